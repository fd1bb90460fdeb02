import { test } from 'node:test';
import { openPgStore, pgSkipReason } from '../helpers/pg.js';
import { exerciseStore } from './conformance.js';

const skip = await pgSkipReason();

if (skip) test('Store conformance: postgres', { skip }, () => undefined);
else exerciseStore('postgres', () => openPgStore());
