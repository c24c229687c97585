import { afterAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { requireService } from '@cdss/core/testing';
import { MAX_PREPARED_STATEMENTS, openMySqlState, type MySqlState } from './mysql.js';

const mariadb = await requireService('mariadb');

describe.skipIf(!mariadb.available)('openMySqlState on the real MariaDB', () => {
  let state: MySqlState | undefined;
  afterAll(async () => {
    await state?.close();
  });

  it('keeps at most MAX_PREPARED_STATEMENTS prepared statements per connection (not mysql2’s 16,000)', async () => {
    // One connection, so every statement below is prepared in the same MariaDB session.
    state = await openMySqlState(mariadb.url, { connectionLimit: 1 });
    const distinct = MAX_PREPARED_STATEMENTS + 20;
    for (let n = 0; n < distinct; n++) {
      const [rows] = await state.pool.execute<RowDataPacket[]>(`SELECT ? + ${n} AS v`, [1]);
      expect(rows[0]?.['v']).toBe(1 + n);
    }
    // What the session still holds: statements prepared minus those closed (the least recently used, by mysql2).
    const [status] = await state.pool.query<RowDataPacket[]>(
      "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')",
    );
    const count = (name: string): number => Number(status.find((r) => r['Variable_name'] === name)?.['Value']);
    expect(count('Com_stmt_prepare')).toBeGreaterThanOrEqual(distinct);
    expect(count('Com_stmt_prepare') - count('Com_stmt_close')).toBeLessThanOrEqual(MAX_PREPARED_STATEMENTS);
  });
});
