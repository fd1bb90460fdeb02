/**
 * Issue 11, item 4: admin submissions are filed under tenant `admin` and
 * auth-off traffic under `default`. A key configured with either name would
 * read, cancel and retry those requests, so the config refuses such keys
 * (from the file or from ERRAND_API_KEYS), all problems reported together.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, RESERVED_TENANTS } from '../../src/config/index.js';

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('the config was accepted');
}

describe('reserved tenant names', () => {
  test('a key of tenant "admin" or "default" (any case) is refused, every one reported together', () => {
    const error = configError(() =>
      loadConfig({
        env: {},
        overrides: {
          auth: {
            keys: [
              { key: 'impostor_admin_key', tenant: 'admin' },
              { key: 'ordinary_alpha_key', tenant: 'alpha' },
              { key: 'impostor_default_key', tenant: 'Default' },
            ],
            admin_keys: ['real_admin_key'],
          },
        },
      }),
    );
    const paths = error.issues.map((issue) => issue.split(':')[0]);
    assert.deepEqual(paths, ['auth.keys[0].tenant', 'auth.keys[2].tenant'], error.message);
    for (const name of RESERVED_TENANTS) assert.match(error.message, new RegExp(name));
  });

  test('ERRAND_API_KEYS cannot take a reserved name either', () => {
    const error = configError(() => loadConfig({ env: { ERRAND_API_KEYS: 'fmc_alpha_key:alpha,fmc_sneaky_key:default' } }));
    assert.deepEqual(
      error.issues.map((issue) => issue.split(':')[0]),
      ['auth.keys[1].tenant'],
    );
  });

  test('names that merely contain a reserved word are ordinary tenants', () => {
    const config = loadConfig({
      env: {},
      overrides: {
        auth: {
          keys: [
            { key: 'fmc_admins_key', tenant: 'admins' },
            { key: 'fmc_default_co', tenant: 'default-co' },
          ],
        },
      },
    });
    assert.deepEqual(
      config.auth.keys.map((k) => k.tenant),
      ['admins', 'default-co'],
    );
  });
});
