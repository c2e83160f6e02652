#!/usr/bin/env node
// One process of `ikegate loadgen --processes N`, forked by src/processes.ts: TypeScript sources
// run through tsx (no build step), as bin/ikegate.mjs does.
import { register } from 'tsx/esm/api';

register();
const { runLoadgenChild } = await import('../src/child.ts');
await runLoadgenChild();
