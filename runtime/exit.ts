/** exit(): a clone's way to hand a value back. */
import { errors } from './errors.js';
import { exitWithValue, self } from './lifecycle.js';

/**
 * Ends this clone with exit code 0, handing `value` (anything V8 can serialize: objects, typed
 * arrays, Maps, Errors...) to the origin's join(). 'exit' listeners run first. Never returns.
 * @throws CloneRuntimeError ERR_NOT_A_CLONE in the origin; TypeError for an unserializable value
 */
export function exit(value?: unknown): never {
  if (self.id === 0) throw errors.exitInOrigin();
  return exitWithValue(value);
}
