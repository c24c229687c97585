/** The shell: navigation by role, and the routes. */
import { lazy, Suspense, useEffect, type ReactNode } from 'react';
import { EventsProvider, useEvents } from './events';
import { Screens } from './routes';
import { Link, match, navigate, usePath } from './router';
import { SessionProvider, useSession } from './session';

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
          {item('/patients', 'Patients')}
          {can('analysis:review') && item('/review', 'Review queue')}
          {item(
            '/notifications',
            <>
              Notifications
              {unread > 0 && (
                <span className="badge" aria-label={`${unread} unread`}>
                  {unread}
                </span>
              )}
            </>,
          )}
          {can('audit:read') && item('/audit', 'Audit log')}
        </ul>
      </nav>
      <span className="who">
        <span
          className={`live live-${status}`}
          title={`Live updates: ${status}`}
          aria-label={`Live updates ${status}`}
        />
        {session.user.name} <span className="role">{session.user.role}</span>
        <button
          type="button"
          onClick={() => {
            signOut();
            navigate('/signin', true);
          }}
        >
          Sign out
        </button>
      </span>
    </header>
  );
}

function Routes() {
  const { session } = useSession();
  const path = usePath();
  // SMART App Launch entry points (src/smart): they open a session themselves.
  const smart = path === '/smart/launch' || path === '/smart/callback';
  useEffect(() => {
    if (smart) return;
    if (!session && path !== '/signin') navigate('/signin', true);
    else if (session && (path === '/' || path === '/signin')) navigate('/patients', true);
  }, [session, path, smart]);
  useEffect(() => {
    // Chromium's scrollTo returns a promise: keep it out of the effect's return value.
    void window.scrollTo(0, 0);
  }, [path]);
  if (smart)
    return <Suspense fallback={null}>{path === '/smart/launch' ? <SmartLaunch /> : <SmartCallback />}</Suspense>;
  if (!session) return path === '/signin' ? <Screens.SignIn /> : null;
  let params: Record<string, string> | undefined;
  if (path === '/patients') return <Screens.Patients />;
  if ((params = match('/patients/:id', path)))
    return <Screens.PatientPage key={params['id']} id={params['id'] as string} />;
  if ((params = match('/patients/:id/studies/:uid', path)))
    return (
      <Screens.StudyPage key={params['uid']} patientId={params['id'] as string} studyUid={params['uid'] as string} />
    );
  if ((params = match('/analyses/:id', path)))
    return <Screens.AnalysisPage key={params['id']} id={params['id'] as string} />;
  if (path === '/review') return <Screens.Review />;
  if (path === '/notifications') return <Screens.Notifications />;
  if (path === '/audit') return <Screens.Audit />;
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
        <Routes />
      </EventsProvider>
    </SessionProvider>
  );
}
