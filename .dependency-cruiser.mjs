/**
 * dependency-cruiser rules run by `npm run check` (and so by `npm test`):
 *
 * - no-circular: no RUNTIME import cycle in packages/server/src or
 *   packages/client/src. Type-only imports (`import type …`, and imports whose
 *   every name is `type …`) are left out of the cycle search: TypeScript erases
 *   them, so they never order module evaluation, and a module naming the type
 *   of the thing that calls it (the engine's services typing the `Engine`, a
 *   store typing its own interface) is normal and harmless. A runtime cycle is
 *   not: whichever module Node evaluates first sees the other half-initialised
 *   (a `const` in the temporal dead zone, a class still undefined).
 *   verbatimModuleSyntax (tsconfig.base.json) keeps `import { type A }` as a
 *   bare `import {} from`, a real runtime edge that depcruise still calls
 *   type-only; ESLint's `no-import-type-side-effects` (eslint.config.js)
 *   forbids that spelling, so `type-only` here means erased.
 * - no-cross-backend: nothing under a `store/sqlite/` folder imports from a
 *   `store/postgres/` folder, nor the other way round. What both backends share
 *   (row mapping, transition rules) lives beside them in `store/`.
 *
 * The rules match paths by folder name, not by repository path, so the guard
 * tests (packages/server/test/guards/) can run this same file on fixtures in a
 * temporary directory.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A runtime import cycle: break it (move the shared piece to a module both import, or import a type only).',
      from: {},
      to: {
        circular: true,
        dependencyTypesNot: ['type-only'],
        viaOnly: { dependencyTypesNot: ['type-only'] },
      },
    },
    {
      name: 'no-cross-backend',
      severity: 'error',
      comment: 'store/sqlite and store/postgres never import each other: shared code belongs in store/.',
      from: { path: '(^|/)store/sqlite/' },
      to: { path: '(^|/)store/postgres/' },
    },
    {
      name: 'no-cross-backend',
      severity: 'error',
      comment: 'store/sqlite and store/postgres never import each other: shared code belongs in store/.',
      from: { path: '(^|/)store/postgres/' },
      to: { path: '(^|/)store/sqlite/' },
    },
  ],
  options: {
    // Count `import type` edges (so the rules can tell them apart) instead of
    // analysing compiled JavaScript, where they are gone.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist)/' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
