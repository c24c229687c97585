/**
 * The Python worker's own tests (pytest, in the venv `install.sh` makes): the shared protocol test vectors of
 * `@cdss/ai-jobs` through the Python decoder, the demo network rebuilt in MONAI against the ONNX graph, and the
 * worker's protocol semantics on the real RabbitMQ. Run here so that `npm test` runs them; without the venv the suite
 * skips, except under CI=true, where it fails. Any pytest failure fails this test with pytest's output.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import { python, venvAvailable, workerDir } from './venv.js';

const venv = venvAvailable('Python worker pytest suite');
const rabbitmq = venv ? await requireService('rabbitmq') : undefined;

describe.runIf(venv)('the Python worker (pytest)', () => {
  it('passes every pytest test', async () => {
    const env: Record<string, string | undefined> = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
    // pytest skips the RabbitMQ tests without a URL (and fails them under CI=true, as requireService did above)
    if (rabbitmq?.available) env['CDSS_TEST_AMQP_URL'] = rabbitmq.url;
    const child = spawn(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider'], {
      cwd: workerDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output).toBe(0);
    expect(output).toMatch(/\d+ passed/);
    if (rabbitmq?.available) expect(output).not.toMatch(/skipped/);
  }, 300_000);
});
