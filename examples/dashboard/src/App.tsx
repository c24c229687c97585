/** The shell: navigation by role, and the routes. */
import { lazy, Suspense, useEffect, type ReactNode } from 'react';
import { EventsProvider, useEvents } from './events';
import { Screens } from './routes';
import { Link, match, navigate, usePath } from './router';
import type { Permission } from './permissions';
import { rememberReturn, SessionProvider, takeReturn, useSession } from './session';

// The SMART pages (and fhirclient) load only when the EHR launches the dashboard.
const SmartLaunch = lazy(() => import('./smart/SmartLaunch').then((m) => ({ default: m.SmartLaunch })));
const SmartCallback = lazy(() => import('./smart/SmartLaunch').then((m) => ({ default: m.SmartCallback })));

function Nav() {
  const { session, signOut, can } = useSession();
  const { unread, status } = useEvents();
  const path = usePath();
  if (!session) return null;
  const item = (to: string, label: ReactNode) => (
    <li>
      <Link to={to} aria-current={path === to || path.startsWith(`${to}/`) ? 'page' : undefined}>
        {label}
      </Link>
    </li>
  );
  return (
    <header className="topbar">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <span className="brand">CDSS</span>
      <nav aria-label="Main">
        <ul>
          {can('patient:read') && item('/patients', 'Patients')}
          {can('analysis:review') && item('/review', 'Review worklist')}
          {item(
            '/notifications',
            <>
              Notifications
              {unread > 0 && (
                <span className="badge">
                  {unread}
                  <span className="visually-hidden"> unread</span>
                </span>
              )}
            </>,
          )}
          {can('audit:read') && item('/audit', 'Audit log')}
        </ul>
      </nav>
      <span className="who">
        <span className={`live live-${status}`} title={`Live updates: ${status}`}>
          <span className="visually-hidden">Live updates {status}</span>
        </span>
        {session.user.name} <span className="role">{session.user.role}</span>
        <button
          type="button"
          onClick={() => {
            signOut();
            takeReturn();
            navigate('/signin', true);
          }}
        >
          Sign out
        </button>
      </span>
    </header>
  );
}

/** Warns that the session is about to end (announced to screen readers), with a way to sign in again now. */
function SessionWarning() {
  const { expiresIn, expire } = useSession();
  if (expiresIn === undefined) return null;
  const seconds = Math.ceil(expiresIn / 1000);
  return (
    <div className="session-warning" role="alert" data-testid="session-warning">
      Your session ends in {Math.floor(seconds / 60)}:{String(seconds % 60).padStart(2, '0')}. After signing in again
      you come back to this page.{' '}
      <button type="button" onClick={expire}>
        Sign in again now
      </button>
    </div>
  );
}

/** A route the signed-in role may not use. */
function NotAvailable({ role }: { role: string }) {
  return (
    <main id="main">
      <h1>Not available for your role</h1>
      <p>
        This page is not available for your role ({role}). <Link to="/patients">Back to the patient list</Link>
      </p>
    </main>
  );
}

/** The screens, each with the permission it needs (the server's policy; it enforces it with 403 either way). */
const ROUTES: Array<{
  pattern: string;
  permission?: Permission;
  render(params: Record<string, string>): ReactNode;
}> = [
  { pattern: '/patients', permission: 'patient:read', render: () => <Screens.Patients /> },
  {
    pattern: '/patients/:id',
    permission: 'patient:read',
    render: (p) => <Screens.PatientPage key={p['id']} id={p['id'] as string} />,
  },
  {
    pattern: '/patients/:id/studies/:uid',
    permission: 'study:read',
    render: (p) => <Screens.StudyPage key={p['uid']} patientId={p['id'] as string} studyUid={p['uid'] as string} />,
  },
  {
    pattern: '/patients/:id/compare/:prior/:current',
    permission: 'study:read',
    render: (p) => (
      <Screens.Compare
        patientId={p['id'] as string}
        priorUid={p['prior'] as string}
        currentUid={p['current'] as string}
      />
    ),
  },
  {
    pattern: '/analyses/:id',
    permission: 'analysis:read',
    render: (p) => <Screens.AnalysisPage key={p['id']} id={p['id'] as string} />,
  },
  { pattern: '/review', permission: 'analysis:review', render: () => <Screens.Review /> },
  { pattern: '/notifications', render: () => <Screens.Notifications /> },
  { pattern: '/audit', permission: 'audit:read', render: () => <Screens.Audit /> },
];

function Routes() {
  const { session, can } = useSession();
  const path = usePath();
  // SMART App Launch entry points (src/smart): they open a session themselves.
  const smart = path === '/smart/launch' || path === '/smart/callback';
  useEffect(() => {
    if (smart) return;
    if (!session && path !== '/signin') {
      // A deep link before signing in: come back to it afterwards.
      rememberReturn(path);
      navigate('/signin', true);
    } else if (session && (path === '/' || path === '/signin')) navigate(takeReturn() ?? '/patients', true);
  }, [session, path, smart]);
  useEffect(() => {
    // Chromium's scrollTo returns a promise: keep it out of the effect's return value.
    void window.scrollTo(0, 0);
  }, [path]);
  if (smart)
    return <Suspense fallback={null}>{path === '/smart/launch' ? <SmartLaunch /> : <SmartCallback />}</Suspense>;
  if (!session) return path === '/signin' ? <Screens.SignIn /> : null;
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (!params) continue;
    if (route.permission && !can(route.permission)) return <NotAvailable role={session.user.role} />;
    return <>{route.render(params)}</>;
  }
  return (
    <main id="main">
      <h1>Not found</h1>
      <p>
        <Link to="/patients">Back to the patient list</Link>
      </p>
    </main>
  );
}

/** The application. */
export function App() {
  return (
    <SessionProvider>
      <EventsProvider>
        <Nav />
        <SessionWarning />
        <Routes />
      </EventsProvider>
    </SessionProvider>
  );
}
