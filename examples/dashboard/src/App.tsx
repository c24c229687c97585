/** The shell: navigation by role, and the routes. */
import { useEffect, type ReactNode } from 'react';
import { EventsProvider, useEvents } from './events';
import { Screens } from './routes';
import { Link, match, navigate, usePath } from './router';
import { SessionProvider, useSession } from './session';

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
  useEffect(() => {
    if (!session && path !== '/signin') navigate('/signin', true);
    else if (session && (path === '/' || path === '/signin')) navigate('/patients', true);
  }, [session, path]);
  useEffect(() => {
    // Chromium's scrollTo returns a promise: keep it out of the effect's return value.
    void window.scrollTo(0, 0);
  }, [path]);
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
