#!/usr/bin/env node
// The `cdss` executable: the command line with the process's streams, environment and working directory.
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
