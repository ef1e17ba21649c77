// Deno and Bun run this: the Hono scenario, its result as one JSON line.
import { honoScenario } from './hono-scenario.mjs';

console.log(JSON.stringify(await honoScenario('a js test secret of at least thirty-two bytes')));
