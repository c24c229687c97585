/**
 * Runs the OpenEMR emulator as its own process on 127.0.0.1 (port 0), so tests can stop it for real by
 * its PID. Prints `LISTENING <port>` when ready. Environment: OPENEMR_DATA_DIR, OPENEMR_VERSION.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createOpenEmrEmulator } from '../router.js';

const version = process.env['OPENEMR_VERSION'] === '7.0' ? '7.0' : '8';
const app = express();
app.use(createOpenEmrEmulator({ version, dataDir: process.env['OPENEMR_DATA_DIR'] }));
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
});
