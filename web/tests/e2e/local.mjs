// In-browser execution's end-to-end steps (called by tests/e2e.mjs with its context).
export async function localSteps (ctx) {
  void ctx
}
