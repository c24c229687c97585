import { afterAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2';
import { requireService } from '@cdss/core/testing';
import { MAX_PREPARED_STATEMENTS, MySqlRunner } from './mysql-shared.js';

const db = await requireService('mariadb');

describe.skipIf(!db.available)('MySqlRunner on the real MariaDB', () => {
  let runner: MySqlRunner | undefined;
  afterAll(async () => {
    await runner?.close();
  });

  it('keeps at most MAX_PREPARED_STATEMENTS prepared statements per connection (not mysql2’s 16,000)', async () => {
    // One connection, so every statement below is prepared in the same MariaDB session.
    runner = new MySqlRunner({ url: db.url, connectionLimit: 1 }, 'test');
    const distinct = MAX_PREPARED_STATEMENTS + 20;
    for (let n = 0; n < distinct; n++) {
      const rows = await runner.rows(`SELECT ? + ${n} AS v`, [1]);
      expect(rows[0]?.['v']).toBe(1 + n);
    }
    // What the session still holds: statements prepared minus those closed (the least recently used, by mysql2).
    const status = await runner.withConnection(async (connection) => {
      const [rows] = await connection.query<RowDataPacket[]>(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')",
      );
      return rows;
    });
    const count = (name: string): number => Number(status.find((r) => r['Variable_name'] === name)?.['Value']);
    expect(count('Com_stmt_prepare')).toBeGreaterThanOrEqual(distinct);
    expect(count('Com_stmt_prepare') - count('Com_stmt_close')).toBeLessThanOrEqual(MAX_PREPARED_STATEMENTS);
  });
});
