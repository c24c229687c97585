/** Sandbox sign-in: pick a demo user; the server issues a token for them. */
import type { DemoUser } from '@cdss/client';
import { useState } from 'react';
import { describeError, useLoad } from '../hooks';
import { navigate } from '../router';
import { takeReturn, useSession } from '../session';
import { ErrorNote, Loading } from '../ui';

const ROLE_NOTES: Record<string, string> = {
  physician: 'patients, studies, request analyses',
  radiologist: 'studies, request and review analyses',
  nurse: 'patients and results (no analysis requests)',
  admin: 'read-only, audit log',
};

/** The sign-in screen. */
export function SignIn() {
  const { client, signIn, ended } = useSession();
  const users = useLoad(() => client.sandbox.users(), [client]);
  const [busy, setBusy] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();

  async function choose(user: DemoUser): Promise<void> {
    setBusy(user.id);
    setError(undefined);
    try {
      const token = await client.sandbox.token(user.id);
      signIn({ token: token.access_token, user: token.user, expiresAt: Date.now() + token.expires_in * 1000 });
      navigate(takeReturn() ?? '/patients', true);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(undefined);
    }
  }

  return (
    <main id="main" className="signin">
      <h1>Sign in to CDSS</h1>
      {ended === 'expired' && (
        <p className="notice" role="alert">
          Your session has ended. Sign in again to return to the page you were on.
        </p>
      )}
      <p>Sandbox mode: choose a demo user. Each role sees and may do different things.</p>
      {users.loading && <Loading what="demo users" />}
      {users.error && (
        <ErrorNote
          message={`${users.error} The sandbox sign-in is only available when the server runs in sandbox mode.`}
          retry={users.reload}
        />
      )}
      {error && <ErrorNote message={error} />}
      <ul className="user-list">
        {users.data
          ?.filter((user) => user.role !== 'ai-service')
          .map((user) => (
            <li key={user.id}>
              <button
                type="button"
                className="user-button"
                disabled={busy !== undefined}
                onClick={() => void choose(user)}
              >
                <strong>{user.name}</strong>
                <span className="role">{user.role}</span>
                <span className="muted">{ROLE_NOTES[user.role] ?? ''}</span>
              </button>
            </li>
          ))}
      </ul>
    </main>
  );
}
