// The debug panel's end-to-end steps (called by tests/e2e.mjs with its context).
export async function debugSteps (ctx) {
  void ctx
}
