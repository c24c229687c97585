// A worker in its own process, for the "worker killed mid-job" fault test: it reports each job it starts on
// stdout and then never finishes, until the test kills it with SIGKILL.
import { AmqpTransport } from '../amqp-transport.js';
import { JobWorker } from '../worker.js';

const url = process.env['AIJOBS_AMQP_URL'];
const prefix = process.env['AIJOBS_PREFIX'];
if (!url || !prefix) throw new Error('AIJOBS_AMQP_URL and AIJOBS_PREFIX are required');
const transport = new AmqpTransport({ url, prefix, retryDelaysMs: [50] });
const worker = new JobWorker({
  transport,
  workerId: `child-${process.pid}`,
  handler: async (ctx) => {
    await ctx.progress('inference', 30);
    process.stdout.write(`started ${ctx.request.jobId}\n`);
    return new Promise(() => {});
  },
});
await worker.start();
process.stdout.write('ready\n');
