import { MemoryBroker, MemoryTransport } from './memory-transport.js';
import { jobsContract } from './jobs.contract.js';
import { transportContract } from './transport.contract.js';

const brokers = new Map<string, MemoryBroker>();
transportContract('MemoryTransport', {
  create(prefix) {
    let broker = brokers.get(prefix);
    if (!broker) brokers.set(prefix, (broker = new MemoryBroker()));
    return new MemoryTransport({ broker, prefix, retryDelaysMs: [50, 100] });
  },
  async cleanup(prefix) {
    brokers.delete(prefix);
  },
});

const jobBrokers = new Map<string, MemoryBroker>();
jobsContract('MemoryTransport', {
  create(prefix) {
    let broker = jobBrokers.get(prefix);
    if (!broker) jobBrokers.set(prefix, (broker = new MemoryBroker()));
    return new MemoryTransport({ broker, prefix, retryDelaysMs: [20, 40] });
  },
  async cleanup(prefix) {
    jobBrokers.delete(prefix);
  },
});
