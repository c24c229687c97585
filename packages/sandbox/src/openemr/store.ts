/**
 * Persistence for the OpenEMR emulator: one JSON file per table in `dataDir`, written atomically
 * (write a temporary file, fsync, rename over the old one) at the end of every request that changed
 * something, before the response is sent. A crash therefore leaves either the old or the new file,
 * never a torn one, and nothing a client was told is stored can be lost.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AppointmentRow,
  EncounterRow,
  CategoryRow,
  DocumentRow,
  FacilityRow,
  ListRow,
  OAuthClientRow,
  PatientRow,
  PrescriptionRow,
  ProcedureRow,
  SoapNoteRow,
  TokenRow,
  UserRow,
  VitalRow,
} from './types.js';

/** Every table the emulator keeps, named as the JSON file it is stored in. */
export interface OpenEmrTables {
  counters: Record<string, number>;
  patients: PatientRow[];
  encounters: EncounterRow[];
  vitals: VitalRow[];
  soapNotes: SoapNoteRow[];
  lists: ListRow[];
  appointments: AppointmentRow[];
  prescriptions: PrescriptionRow[];
  procedures: ProcedureRow[];
  users: UserRow[];
  facilities: FacilityRow[];
  clients: OAuthClientRow[];
  tokens: TokenRow[];
  categories: CategoryRow[];
  documents: DocumentRow[];
  /** OpenEMR's `globals` the emulator honours (e.g. `rest_system_scopes_api`). */
  globals: Record<string, string>;
}

/** Names of the tables, in a stable order. */
export const TABLE_NAMES = [
  'counters',
  'patients',
  'encounters',
  'vitals',
  'soapNotes',
  'lists',
  'appointments',
  'prescriptions',
  'procedures',
  'users',
  'facilities',
  'clients',
  'tokens',
  'categories',
  'documents',
  'globals',
] as const satisfies readonly (keyof OpenEmrTables)[];

/** A table name. */
export type TableName = (typeof TABLE_NAMES)[number];

/** An empty database. */
export function emptyTables(): OpenEmrTables {
  return {
    counters: {},
    patients: [],
    encounters: [],
    vitals: [],
    soapNotes: [],
    lists: [],
    appointments: [],
    prescriptions: [],
    procedures: [],
    users: [],
    facilities: [],
    clients: [],
    tokens: [],
    categories: [],
    documents: [],
    globals: {},
  };
}

/**
 * The emulator's database: tables in memory, optionally mirrored to JSON files.
 */
export class OpenEmrStore {
  readonly tables: OpenEmrTables;
  private readonly dirty = new Set<TableName>();

  /**
   * @param dataDir - folder for the JSON files; `undefined` keeps everything in memory
   */
  constructor(readonly dataDir: string | undefined) {
    this.tables = emptyTables();
    if (dataDir !== undefined) {
      mkdirSync(dataDir, { recursive: true });
      for (const name of TABLE_NAMES) {
        const file = join(dataDir, `${name}.json`);
        if (existsSync(file)) {
          (this.tables as unknown as Record<string, unknown>)[name] = JSON.parse(readFileSync(file, 'utf8')) as unknown;
        }
      }
    }
  }

  /** True when the store was loaded from disk with data in it. */
  get isEmpty(): boolean {
    return this.tables.patients.length === 0 && this.tables.users.length === 0;
  }

  /**
   * Takes the next value of a numeric sequence (an auto-increment column).
   * @param name - the sequence
   * @param floor - the sequence never returns less than this
   */
  nextId(name: string, floor = 1): number {
    const current = this.tables.counters[name] ?? floor - 1;
    const next = Math.max(current + 1, floor);
    this.tables.counters[name] = next;
    this.touch('counters');
    return next;
  }

  /**
   * Marks a table as changed, to be written by the next {@link OpenEmrStore.flush}.
   * @param name - the table
   */
  touch(name: TableName): void {
    this.dirty.add(name);
  }

  /** Writes every changed table to disk atomically. No-op in memory mode. */
  flush(): void {
    if (this.dataDir === undefined) {
      this.dirty.clear();
      return;
    }
    for (const name of this.dirty) {
      const file = join(this.dataDir, `${name}.json`);
      const tmp = `${file}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, JSON.stringify(this.tables[name]));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    }
    this.dirty.clear();
  }
}
