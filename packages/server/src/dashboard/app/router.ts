/**
 * Hash routes, so the server serves one page and reloads never lose the view:
 * `#/requests?status=failed&operation=x&since=60`, `#/requests/<id>`, `#/operations`.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route = { page: 'requests'; query: URLSearchParams } | { page: 'request'; id: string } | { page: 'operations' };

function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/requests';
  const [pathname = '', search = ''] = path.split('?', 2);
  const parts = pathname
    .split('/')
    .filter(Boolean)
    .map((p) => decodeURIComponent(p));
  if (parts[0] === 'operations') return { page: 'operations' };
  if (parts[0] === 'requests' && parts[1]) return { page: 'request', id: parts[1] };
  return { page: 'requests', query: new URLSearchParams(search) };
}

export function requestHref(id: string): string {
  return `#/requests/${encodeURIComponent(id)}`;
}

export function navigate(hash: string): void {
  window.location.hash = hash;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
