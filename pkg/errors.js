// Errors raised by the package's JavaScript (not by the wasm), in the one
// shape of src/wasm/convert.rs: an Error named TollgateError with code and status.
export function tollgateError(code, status, message) {
  const err = new Error(message);
  err.name = 'TollgateError';
  err.code = code;
  err.status = status;
  return err;
}
