// What the run and in-browser steps read from the run panel: the runs a page lists (its
// `meshRuns` test window) and waits on them.

/** The panel's runs in a page, newest first. */
export const runsOf = (page) => page.evaluate(() => document.querySelector('[data-testid=run-panel]').meshRuns.list())

/** Waits until a page lists a run matching `want` (fields compared for equality). */
export const waitRun = (page, want, what, timeout) =>
  page.waitForFunction((w) => document.querySelector('[data-testid=run-panel]')?.meshRuns.list()
    .find(run => Object.entries(w).every(([k, v]) => run[k] === v)), want, { timeout })
    .then(h => h.jsonValue())
    .catch(async e => { throw new Error(`${what}: ${e.message}\nruns: ${JSON.stringify(await runsOf(page).catch(() => null))}`) })
