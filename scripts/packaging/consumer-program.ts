// A small integrator's program, type-checked by scripts/packaging/check-packages.mjs against the published .d.ts
// files of every package (installed from their tarballs with npm). It is never run; tsc checks it as an ES module
// and as CommonJS.
import { HttpError, type Logger } from '@cdss/core';
import { createCdssClient, type CdssClient } from '@cdss/client';
import { generatePhantom, writePhantomStudy, type Volume } from '@cdss/dicom';
import { volumesToInput, type SegmentationModel } from '@cdss/segmentation';
import { OrthancClient, retrieveStudyInput } from '@cdss/orthanc-client';
import { Cache, MemoryStore } from '@cdss/cache';
import { MySqlStore } from '@cdss/cache/mysql';
import { AmqpInvalidationBus } from '@cdss/cache/amqp';
import { JobClient, MemoryBroker, MemoryJobStore, MemoryTransport } from '@cdss/ai-jobs';
import type { AmqpTransport } from '@cdss/ai-jobs/amqp';
import type { MySqlJobStore } from '@cdss/ai-jobs/mysql';
import { patientToFhir, MemoryOutbox } from '@cdss/fhir-mapper';
import { fhirIssues } from '@cdss/fhir-mapper/validate';
import type { MySqlOutbox } from '@cdss/fhir-mapper/mysql';
import { createOpenEmrClient } from '@cdss/openemr-client';
import { createDicomStoreEmulator } from '@cdss/sandbox';
import type { Patient } from 'fhir/r4.js';

export async function integrate(logger: Logger): Promise<number> {
  const phantom = generatePhantom({ seed: 1, dims: [16, 16, 8] });
  const study = writePhantomStudy(phantom, { patientId: 'DEMO' });
  const files: Uint8Array[] = study.series.t1c.files;
  const orthanc = new OrthancClient({ baseUrl: 'http://127.0.0.1:8042' });
  const input = await retrieveStudyInput(orthanc.dicomweb, study.studyInstanceUid);
  const t1c: Volume = input.channels[0];
  const segment = (model: SegmentationModel) =>
    model.segment(volumesToInput(model.manifest, { t1c, t1: t1c, t2: t1c, flair: t1c }));
  void segment;

  const cache = new Cache({ store: new MemoryStore({ maxEntries: 100 }) });
  const l2: Promise<MySqlStore> = MySqlStore.open({ url: 'mysql://u:p@127.0.0.1/db' });
  const bus: Promise<AmqpInvalidationBus> = AmqpInvalidationBus.open({ url: 'amqp://127.0.0.1' });
  void [cache, l2, bus];

  const jobs = new JobClient({
    transport: new MemoryTransport({ broker: new MemoryBroker() }),
    store: new MemoryJobStore(),
  });
  const drivers: [AmqpTransport?, MySqlJobStore?, MySqlOutbox?] = [];
  void [jobs, drivers];

  const patient: Patient = patientToFhir({
    pid: 1,
    uuid: '9b5c1f0e-0000-4000-8000-000000000001',
    fname: 'Ada',
    lname: 'Lovelace',
    DOB: '1990-01-01',
    sex: 'Female',
  });
  const issues = fhirIssues(patient);
  await new MemoryOutbox().enqueue({
    kind: 'upsert',
    resource: patient,
    identifier: { system: 'urn:demo', value: '1' },
  });

  const openemr = createOpenEmrClient({ baseUrl: 'https://openemr.example', auth: { kind: 'none' } as never });
  const client: CdssClient = createCdssClient({ baseUrl: 'http://127.0.0.1:8080' });
  const store = createDicomStoreEmulator;
  void [openemr, client, store, logger];

  try {
    await orthanc.getSystem();
  } catch (error) {
    if (HttpError.isInstance(error)) return error.status ?? 0;
  }
  return files.length + issues.length;
}
