/**
 * Runs the OpenEMR emulator as its own process on 127.0.0.1 on the port in PORT (below 32768, from the test's freePort()), so tests can stop it for real by
 * its PID. Prints `LISTENING <port>` when ready. Environment: PORT, OPENEMR_DATA_DIR, OPENEMR_VERSION.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createOpenEmrEmulator } from '../router.js';

const version = process.env['OPENEMR_VERSION'] === '7.0' ? '7.0' : '8';
const app = express();
app.use(createOpenEmrEmulator({ version, dataDir: process.env['OPENEMR_DATA_DIR'] }));
const port = Number(process.env['PORT']);
if (!Number.isInteger(port) || port <= 0) throw new Error('PORT must be set to a free port');
const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
});
