#!/usr/bin/env node
// The `eplb` executable: everything testable lives in main.ts; this file only binds the process.
import { processContext, runCli } from "./main.js";

runCli(process.argv.slice(2), processContext()).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `eplb: internal error (please report): ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
