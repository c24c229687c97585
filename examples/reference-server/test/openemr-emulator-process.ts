/**
 * Runs the OpenEMR emulator as its own process, so a test can stop it for real (by PID) and start it again.
 * Usage: PORT=... DATA_DIR=... node --conditions=@cdss/source --import tsx test/openemr-emulator-process.ts
 */
import express from 'express';
import { createOpenEmrEmulator } from '@cdss/sandbox';

const port = Number(process.env['PORT']);
const app = express().use(createOpenEmrEmulator({ dataDir: process.env['DATA_DIR'], seed: true }));
const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
