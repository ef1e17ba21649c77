// The whole flow on the default in-memory store.
import { describe, test } from 'node:test';
import { flow } from './flow.mjs';

describe('memory store', () => flow(test));
