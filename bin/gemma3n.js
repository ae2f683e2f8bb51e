#!/usr/bin/env node
// Entry point of the `gemma3n` command: runs the compiled CLI (built by `npm install` / `npm run build`).
import { main } from '../dist/src/cli/main.js';

// A closed pipe (e.g. `gemma3n ... | head`) ends the program quietly.
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
const code = await main(process.argv.slice(2));
// Kernel worker threads may still be parked: exit once stdout has been flushed.
process.stdout.write('', () => process.exit(code));
