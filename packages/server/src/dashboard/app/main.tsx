/**
 * The Errand dashboard: a key prompt, then three pages (requests, a request,
 * operations). The key lives in sessionStorage (gone when the tab closes) and
 * goes only into the Authorization header of calls to this server's /v1 API,
 * so the dashboard sees exactly what the key may see.
 */
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { createApi, describeError, type Api, type StatsView } from './api.js';
import { ErrorNote } from './components.js';
import { OperationsPage } from './pages/OperationsPage.js';
import { RequestPage } from './pages/RequestPage.js';
import { RequestsPage } from './pages/RequestsPage.js';
import { useRoute } from './router.js';
import 'uplot/dist/uPlot.min.css';
import './styles.css';

const KEY_STORAGE = 'errand.dashboard.key';

interface Session {
  key: string;
  caller: StatsView['caller'];
}

function readStoredKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(() => readStoredKey() !== null);
  const [notice, setNotice] = useState<string | null>(null);

  const logout = useCallback((why: string | null) => {
    sessionStorage.removeItem(KEY_STORAGE);
    setSession(null);
    setNotice(why);
  }, []);

  const signIn = useCallback(async (key: string): Promise<string | null> => {
    const probe = createApi(key, () => {});
    try {
      const stats = await probe.get<StatsView>('/v1/stats?window_minutes=5');
      sessionStorage.setItem(KEY_STORAGE, key);
      setSession({ key, caller: stats.caller });
      setNotice(null);
      return null;
    } catch (err) {
      return describeError(err);
    }
  }, []);

  useEffect(() => {
    const stored = readStoredKey();
    if (stored === null) return;
    void signIn(stored).then((error) => {
      if (error) logout(error);
      setChecking(false);
    });
  }, [signIn, logout]);

  if (checking) return <p class="loading">Checking the stored key…</p>;
  if (!session) return <KeyPrompt onSubmit={signIn} notice={notice} />;
  return (
    <Signed
      session={session}
      onLogout={() => logout('Signed out. The key was removed from this tab.')}
      onRejected={() => logout('The server no longer accepts this key (401). Sign in again.')}
    />
  );
}

function KeyPrompt({ onSubmit, notice }: { onSubmit: (key: string) => Promise<string | null>; notice: string | null }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main class="prompt" id="main">
      <h1>Errand dashboard</h1>
      {notice && <p class="notice">{notice}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          void onSubmit(key.trim()).then((err) => {
            setBusy(false);
            setError(err);
          });
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          ref={input}
          type="password"
          autocomplete="off"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-describedby="api-key-help"
        />
        <p id="api-key-help" class="help">
          An admin key sees every tenant; a tenant key sees its own requests. Leave it empty if the server has no keys. The key is kept in
          this tab only.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <ErrorNote text={error} />
      </form>
    </main>
  );
}

function Signed({ session, onLogout, onRejected }: { session: Session; onLogout: () => void; onRejected: () => void }) {
  const route = useRoute();
  const rejected = useRef(onRejected);
  rejected.current = onRejected;
  const api: Api = useMemo(() => createApi(session.key, () => rejected.current()), [session.key]);
  const who = session.caller.admin ? 'admin key (all tenants)' : `tenant ${session.caller.tenant ?? ''}`;
  const mainRef = useRef<HTMLElement>(null);
  // Move focus to the new page's heading so keyboard and screen-reader users land on it.
  useEffect(() => mainRef.current?.querySelector<HTMLElement>('h1')?.focus(), [route.page, route.page === 'request' ? route.id : '']);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), mainRef.current?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Errand</span>
        <nav aria-label="Pages">
          <a href="#/requests" aria-current={route.page !== 'operations' ? 'page' : undefined}>
            Requests
          </a>
          <a href="#/operations" aria-current={route.page === 'operations' ? 'page' : undefined}>
            Operations
          </a>
        </nav>
        <span class="who" data-testid="who">
          Signed in: {who}
        </span>
        <button type="button" class="secondary" onClick={onLogout}>
          Sign out
        </button>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        {route.page === 'requests' && <RequestsPage api={api} query={route.query} />}
        {route.page === 'request' && <RequestPage key={route.id} api={api} id={route.id} />}
        {route.page === 'operations' && <OperationsPage api={api} />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
