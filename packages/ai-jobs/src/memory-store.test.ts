import { MemoryJobStore } from './memory-store.js';
import { jobStoreContract } from './store.contract.js';

jobStoreContract('MemoryJobStore', async () => new MemoryJobStore());
