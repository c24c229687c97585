/**
 * Runs the embedded FHIR server as its own process (for fault tests that stop a FHIR server by PID):
 *   node --conditions=@cdss/source --import tsx packages/sandbox/src/fhir/main.ts [port]
 * Prints one line `listening <base URL>` on stdout once it accepts connections; exits on SIGTERM/SIGINT.
 */
import { createEmbeddedFhirServer } from './server.js';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: main.ts [port]\n');
  process.exit(2);
}
const { url, close } = await createEmbeddedFhirServer().listen(port);
process.stdout.write(`listening ${url}\n`);
const stop = (): void => {
  void close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
