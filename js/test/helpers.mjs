import assert from 'node:assert/strict';

export const SECRET = 'a js test secret of at least thirty-two bytes';

/** Awaits a promise that must reject with a TollgateError of `code`; answers the error. */
export async function rejectsWith(promise, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a ${code} error, but the call succeeded`);
  assert.ok(err instanceof Error, `expected an Error, got ${typeof err}`);
  assert.equal(err.name, 'TollgateError', `${err.name}: ${err.message}`);
  assert.equal(err.code, code, `${err.code}: ${err.message}`);
  assert.equal(typeof err.status, 'number');
  return err;
}

/** A fresh user id, so tests sharing a store never collide. */
export function user(tag) {
  return `${tag}-${Math.random().toString(36).slice(2, 10)}`;
}
