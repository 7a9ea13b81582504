#!/usr/bin/env node
// The `eplb` executable: everything testable lives in main.ts; this file only binds the process.
import { INTERNAL_ERROR_EXIT, internalErrorText, processContext, runCli } from "./main.js";

// `eplb ... | head` closes the pipe early: that is the reader's choice, not an error to report.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

// Whatever escapes the command's promise (a throw in a stream or timer callback) still ends in
// one line and exit 70, never a stack trace by default.
process.on("uncaughtException", (error) => {
  process.stderr.write(internalErrorText("eplb", error));
  process.exit(INTERNAL_ERROR_EXIT);
});

runCli(process.argv.slice(2), processContext()).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(internalErrorText("eplb", error));
    process.exitCode = INTERNAL_ERROR_EXIT;
  },
);
