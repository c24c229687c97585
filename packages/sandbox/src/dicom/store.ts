/**
 * The store behind the DICOM store emulator: Part-10 files in a folder, an in-memory index of the
 * patient/study/series/instance hierarchy rebuilt from the files at start, and a change log (JSON lines) that
 * survives restarts. Orthanc's resource IDs are reproduced (SHA-1 of the UIDs, 5 groups of 8 hex digits).
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CdssError } from '@cdss/core';
import { getString, parseDicom, type DicomDataset, type ParsedDicom } from '@cdss/dicom';

/** A resource level. */
export type Level = 'Patient' | 'Study' | 'Series' | 'Instance';

/** One stored instance, as indexed. */
export interface StoredInstance {
  id: string;
  seriesId: string;
  studyId: string;
  patientId: string;
  uids: { patient: string; study: string; series: string; sop: string; sopClass: string };
  /** Main tags by keyword (strings, as Orthanc's MainDicomTags). */
  tags: Record<string, string>;
  fileSize: number;
  path: string;
  /** Order of arrival in the series (Orthanc's IndexInSeries is 1-based). */
  indexInSeries: number;
}

/** One node of the hierarchy above instances. */
export interface StoredResource {
  id: string;
  level: Exclude<Level, 'Instance'>;
  parent?: string;
  children: Set<string>;
  tags: Record<string, string>;
  lastUpdate: number;
  stable: boolean;
}

/** One change of the feed. */
export interface StoreChange {
  Seq: number;
  ChangeType: string;
  ResourceType: Level;
  ID: string;
  Path: string;
  Date: string;
}

/** Bad input for the store: not DICOM, or missing the UIDs every instance needs. */
export class StoreInputError extends CdssError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'DICOM_STORE_BAD_INPUT', cause });
  }
}

const PATIENT_TAGS: Record<string, number> = {
  PatientID: 0x00100020,
  PatientName: 0x00100010,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
};
const STUDY_TAGS: Record<string, number> = {
  StudyInstanceUID: 0x0020000d,
  StudyDate: 0x00080020,
  StudyTime: 0x00080030,
  StudyID: 0x00200010,
  StudyDescription: 0x00081030,
  AccessionNumber: 0x00080050,
  ReferringPhysicianName: 0x00080090,
};
const SERIES_TAGS: Record<string, number> = {
  SeriesInstanceUID: 0x0020000e,
  Modality: 0x00080060,
  SeriesDescription: 0x0008103e,
  SeriesNumber: 0x00200011,
  SeriesDate: 0x00080021,
  SeriesTime: 0x00080031,
  BodyPartExamined: 0x00180015,
  ProtocolName: 0x00181030,
  Manufacturer: 0x00080070,
  ImageOrientationPatient: 0x00200037,
  FrameOfReferenceUID: 0x00200052,
};
const INSTANCE_TAGS: Record<string, number> = {
  SOPInstanceUID: 0x00080018,
  SOPClassUID: 0x00080016,
  InstanceNumber: 0x00200013,
  ImagePositionPatient: 0x00200032,
  ImageOrientationPatient: 0x00200037,
  NumberOfFrames: 0x00280008,
  AcquisitionNumber: 0x00200012,
};

/** Orthanc's resource ID: SHA-1 of the `|`-joined identifiers, as 5 groups of 8 hex digits. */
export function orthancId(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('|')).digest('hex');
  return [0, 8, 16, 24, 32].map((i) => h.slice(i, i + 8)).join('-');
}

function pick(file: ParsedDicom, ds: DicomDataset, tags: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, t] of Object.entries(tags)) {
    const v = getString(file, ds.get(t));
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').slice(0, 15);
}

/** Options of {@link DicomFileStore}. */
export interface DicomFileStoreOptions {
  /** Folder of the store (created if missing). */
  root: string;
  /** Seconds without new instances after which a series/study/patient is stable (Orthanc's StableAge); default 2. */
  stableAgeSeconds?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * DICOM files on disk with Orthanc's hierarchy and change feed.
 */
export class DicomFileStore {
  readonly root: string;
  readonly instances = new Map<string, StoredInstance>();
  readonly resources = new Map<string, StoredResource>();
  readonly changes: StoreChange[] = [];
  private seq = 0;
  private readonly stableAgeMs: number;
  private readonly now: () => number;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly byUid = new Map<string, { level: Level; id: string }[]>();

  constructor(options: DicomFileStoreOptions) {
    this.root = options.root;
    this.stableAgeMs = (options.stableAgeSeconds ?? 2) * 1000;
    this.now = options.now ?? Date.now;
    mkdirSync(join(this.root, 'instances'), { recursive: true });
    this.load();
  }

  private get changesPath(): string {
    return join(this.root, 'changes.jsonl');
  }

  private load(): void {
    if (existsSync(this.changesPath)) {
      for (const line of readFileSync(this.changesPath, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const c = JSON.parse(line) as StoreChange;
          this.changes.push(c);
          this.seq = Math.max(this.seq, c.Seq);
        } catch {
          // A torn last line (crash mid-write) is ignored.
        }
      }
    }
    for (const name of readdirSync(join(this.root, 'instances')).sort()) {
      if (!name.endsWith('.dcm')) continue;
      const path = join(this.root, 'instances', name);
      try {
        this.index(readFileSync(path), path, false);
      } catch {
        // A file that cannot be indexed is skipped; it was validated when stored.
      }
    }
    for (const r of this.resources.values()) r.stable = true;
  }

  /**
   * Parses and validates a Part-10 file without storing it.
   * @throws {@link StoreInputError} for anything not storable
   */
  inspect(bytes: Uint8Array): { file: ParsedDicom; uids: StoredInstance['uids'] } {
    let file: ParsedDicom;
    try {
      file = parseDicom(bytes);
    } catch (error) {
      throw new StoreInputError(
        `not a readable DICOM file: ${error instanceof Error ? error.message : String(error)}`,
        error,
      );
    }
    const ds = file.dataset;
    const uids = {
      patient: getString(file, ds.get(0x00100020)) ?? '',
      study: getString(file, ds.get(0x0020000d)) ?? '',
      series: getString(file, ds.get(0x0020000e)) ?? '',
      sop: getString(file, ds.get(0x00080018)) ?? '',
      sopClass: getString(file, ds.get(0x00080016)) ?? '',
    };
    for (const [k, v] of Object.entries({
      StudyInstanceUID: uids.study,
      SeriesInstanceUID: uids.series,
      SOPInstanceUID: uids.sop,
      SOPClassUID: uids.sopClass,
    })) {
      if (!v) throw new StoreInputError(`DICOM file has no ${k}`);
    }
    return { file, uids };
  }

  private index(bytes: Uint8Array, path: string, record: boolean): { instance: StoredInstance; created: boolean } {
    const { file, uids } = this.inspect(bytes);
    const ds = file.dataset;
    const patientId = orthancId(uids.patient);
    const studyId = orthancId(uids.patient, uids.study);
    const seriesId = orthancId(uids.patient, uids.study, uids.series);
    const id = orthancId(uids.patient, uids.study, uids.series, uids.sop);
    const existing = this.instances.get(id);
    if (existing) return { instance: existing, created: false };
    const now = this.now();
    const levels: Array<[Exclude<Level, 'Instance'>, string, string | undefined, Record<string, number>, string]> = [
      ['Patient', patientId, undefined, PATIENT_TAGS, uids.patient],
      ['Study', studyId, patientId, STUDY_TAGS, uids.study],
      ['Series', seriesId, studyId, SERIES_TAGS, uids.series],
    ];
    for (const [level, rid, parent, tags, uid] of levels) {
      let r = this.resources.get(rid);
      if (!r) {
        r = {
          id: rid,
          level,
          children: new Set(),
          tags: pick(file, ds, tags),
          lastUpdate: now,
          stable: false,
          ...(parent ? { parent } : {}),
        };
        this.resources.set(rid, r);
        if (parent) this.resources.get(parent)?.children.add(rid);
        this.addUid(uid, level, rid);
        if (record) this.record(`New${level}`, level, rid);
      }
      r.lastUpdate = now;
      r.stable = false;
    }
    const series = this.resources.get(seriesId) as StoredResource;
    const instance: StoredInstance = {
      id,
      seriesId,
      studyId,
      patientId,
      uids,
      tags: pick(file, ds, INSTANCE_TAGS),
      fileSize: bytes.length,
      path,
      indexInSeries: series.children.size + 1,
    };
    series.children.add(id);
    this.instances.set(id, instance);
    this.addUid(uids.sop, 'Instance', id);
    if (record) {
      this.record('NewInstance', 'Instance', id);
      for (const rid of [seriesId, studyId, patientId]) this.scheduleStable(rid);
    }
    return { instance, created: true };
  }

  private addUid(uid: string, level: Level, id: string): void {
    const list = this.byUid.get(uid) ?? [];
    if (!list.some((e) => e.id === id)) list.push({ level, id });
    this.byUid.set(uid, list);
  }

  private scheduleStable(rid: string): void {
    clearTimeout(this.timers.get(rid));
    const t = setTimeout(() => {
      this.timers.delete(rid);
      const r = this.resources.get(rid);
      if (!r || r.stable) return;
      r.stable = true;
      this.record(`Stable${r.level}`, r.level, rid);
    }, this.stableAgeMs);
    t.unref();
    this.timers.set(rid, t);
  }

  private record(type: string, level: Level, id: string): void {
    const path = `/${{ Patient: 'patients', Study: 'studies', Series: 'series', Instance: 'instances' }[level]}/${id}`;
    const change: StoreChange = {
      Seq: ++this.seq,
      ChangeType: type,
      ResourceType: level,
      ID: id,
      Path: path,
      Date: stamp(this.now()),
    };
    this.changes.push(change);
    appendFileSync(this.changesPath, `${JSON.stringify(change)}\n`);
  }

  /**
   * Stores a Part-10 file (idempotent: the same instance again is `AlreadyStored`).
   * @throws {@link StoreInputError} for a file that is not storable; nothing is written then
   */
  store(bytes: Uint8Array): { instance: StoredInstance; status: 'Success' | 'AlreadyStored' } {
    const { uids } = this.inspect(bytes);
    const id = orthancId(uids.patient, uids.study, uids.series, uids.sop);
    const existing = this.instances.get(id);
    if (existing) return { instance: existing, status: 'AlreadyStored' };
    const path = join(this.root, 'instances', `${id}.dcm`);
    // Write then rename, so a crash never leaves a half-written file that looks stored.
    writeFileSync(`${path}.tmp`, bytes);
    renameSync(`${path}.tmp`, path);
    const { instance } = this.index(bytes, path, true);
    return { instance, status: 'Success' };
  }

  /** The file of an instance. */
  async read(id: string): Promise<Buffer> {
    const inst = this.instances.get(id);
    if (!inst) throw new StoreInputError(`no instance ${id}`);
    return readFile(inst.path);
  }

  /** Instances below a resource, in series order. */
  instancesOf(id: string): StoredInstance[] {
    const inst = this.instances.get(id);
    if (inst) return [inst];
    const r = this.resources.get(id);
    if (!r) return [];
    if (r.level === 'Series')
      return [...r.children].map((c) => this.instances.get(c)).filter((x): x is StoredInstance => x !== undefined);
    return [...r.children].flatMap((c) => this.instancesOf(c));
  }

  /** Resources whose UID (or PatientID) is `uid`. */
  lookup(uid: string): Array<{ level: Level; id: string }> {
    return (this.byUid.get(uid) ?? []).filter((e) => this.instances.has(e.id) || this.resources.has(e.id));
  }

  /**
   * Deletes a resource and everything below it; parents left empty are deleted too (as Orthanc does).
   * @returns false when it did not exist
   */
  delete(id: string): boolean {
    if (!this.instances.has(id) && !this.resources.has(id)) return false;
    for (const inst of this.instancesOf(id)) {
      rmSync(inst.path, { force: true });
      this.instances.delete(inst.id);
      this.resources.get(inst.seriesId)?.children.delete(inst.id);
    }
    const prune = (rid: string | undefined): void => {
      if (!rid) return;
      const r = this.resources.get(rid);
      if (!r) return;
      const alive = [...r.children].some((c) => this.resources.has(c) || this.instances.has(c));
      if (alive) return;
      this.resources.delete(rid);
      clearTimeout(this.timers.get(rid));
      if (r.parent) {
        this.resources.get(r.parent)?.children.delete(rid);
        prune(r.parent);
      }
    };
    const r = this.resources.get(id);
    if (r) {
      for (const c of [...r.children]) if (this.resources.has(c)) this.removeTree(c);
      r.children.clear();
      prune(id);
    } else {
      const inst = [...this.resources.values()].find((x) => x.children.has(id));
      prune(inst?.id);
    }
    this.record('Deleted', r?.level ?? 'Instance', id);
    return true;
  }

  private removeTree(rid: string): void {
    const r = this.resources.get(rid);
    if (!r) return;
    for (const c of r.children) this.removeTree(c);
    this.resources.delete(rid);
  }

  /** Stops timers (the change log is already on disk). */
  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
