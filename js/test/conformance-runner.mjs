// Runs the conformance suite (src/conformance) on one store and prints its line for the CI log:
//   conformance: <store>: 19 passed, 5 skipped (needs atomic commit: a, b; needs consistent reads: c)
// Shared by js/test/conformance.mjs (JS stores in Node) and js/worker/test/conformance.mjs (workerd).

/** The summary line of one store's results ({ name, outcome, reason? }). */
export function summaryLine(store, results) {
  const count = (outcome) => results.filter((r) => r.outcome === outcome);
  const passed = count('passed');
  const failed = count('failed');
  const skipped = count('skipped');
  let line = `conformance: ${store}: ${passed.length} passed`;
  if (failed.length) line += `, ${failed.length} failed (${failed.map((r) => r.name).join(', ')})`;
  if (skipped.length) {
    const byReason = new Map();
    for (const r of skipped) byReason.set(r.reason, [...(byReason.get(r.reason) ?? []), r.name]);
    line += `, ${skipped.length} skipped (${[...byReason].map(([reason, names]) => `${reason}: ${names.join(', ')}`).join('; ')})`;
  }
  return line;
}

/**
 * Runs every case with `runCase(name)` (which answers { outcome, reason?, failure? }), printing
 * each outcome and then the summary line. Answers whether no case failed.
 */
export async function runSuite(store, cases, runCase) {
  if (!Array.isArray(cases) || cases.length === 0) throw new Error(`conformance: ${store}: no cases to run`);
  const results = [];
  for (const { name } of cases) {
    const started = performance.now();
    let answer;
    try {
      answer = await runCase(name);
    } catch (e) {
      answer = { outcome: 'failed', failure: `the harness threw: ${e?.stack ?? e}` };
    }
    if (!['passed', 'skipped', 'failed'].includes(answer?.outcome)) {
      answer = { outcome: 'failed', failure: `not an outcome: ${JSON.stringify(answer)}` };
    }
    results.push({ name, ...answer });
    const ms = Math.round(performance.now() - started);
    const detail = answer.reason ? ` (${answer.reason})` : answer.failure ? `: ${answer.failure}` : '';
    console.log(`  ${store} ${name}: ${answer.outcome}${detail} [${ms} ms]`);
  }
  console.log(summaryLine(store, results));
  return results.every((r) => r.outcome !== 'failed');
}
