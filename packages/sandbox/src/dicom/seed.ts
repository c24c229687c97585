/**
 * Demo data for the sandbox: synthetic brain-MRI studies (four series each, from `@cdss/dicom`'s phantom
 * generator) stored into the DICOM store emulator.
 * @packageDocumentation
 */
import { generatePhantom, writePhantomStudy, PHANTOM_MODALITIES, type Vec3, type WrittenStudy } from '@cdss/dicom';
import type { DicomFileStore } from './store.js';

/** One demo patient. */
export interface DemoPatient {
  /** Patient ID (synthetic). */
  patientId: string;
  /** DICOM person name, e.g. `DEMO^ALICE`. */
  patientName?: string;
  /** Phantom seed: the tumour's position, size and shape. */
  seed: number;
}

/**
 * Writes a synthetic study per patient into the store. Idempotent: seeding again stores nothing new (the
 * UIDs derive from the patient ID and seed).
 * @param store - the emulator's store (`emulator.store`)
 * @param patients - who to create
 * @param options - grid size (default 64×64×48; 240×240×155 is BraTS size)
 * @returns the written studies (UIDs per series)
 */
export function seedPhantomStudies(
  store: DicomFileStore,
  patients: readonly DemoPatient[],
  options: { dims?: Vec3 } = {},
): WrittenStudy[] {
  return patients.map((p) => {
    const phantom = generatePhantom({ seed: p.seed, dims: options.dims ?? [64, 64, 48] });
    const study = writePhantomStudy(phantom, {
      patientId: p.patientId,
      ...(p.patientName ? { patientName: p.patientName } : {}),
      uidSeed: `demo/${p.patientId}/${p.seed}`,
    });
    for (const m of PHANTOM_MODALITIES) for (const f of study.series[m].files) store.store(f);
    return study;
  });
}
