'use strict';

// The demo's settings, read like the .NET demo's: `--Section:Key=value` (or `--Section:Key value`) on the
// command line, else `Section__Key` environment variables. `--urls` names the address to listen on.

const baton = require('baton-session');

const BACKEND_SETTINGS = ['MaxStateBytes', 'MaxBufferedResponseBytes', 'ClockSkew', 'SessionLockTimeout', 'MaxSessions',
  'MaxTotalStateBytes', 'MaxRememberedRestores', 'MaxRetiredSessions', 'LocalIdleTimeout', 'PurgeInterval'];

/** key (lowercase, ':'-separated) → value, from the arguments. */
function parseArguments(argv) {
  const values = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const match = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!match) throw new Error(`Unexpected argument ${JSON.stringify(arg)}: use --Section:Key=value.`);
    let value = match[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`The argument ${arg} needs a value.`);
      value = argv[++i];
    }
    values.set(match[1].toLowerCase(), value);
  }
  return values;
}

function parseWhole(name, text, min, max) {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new Error(`${name} must be a whole number between ${min} and ${max} (it is ${JSON.stringify(text)}).`);
  }
  return Number(text);
}

/** The listen address of --urls: loopback or another host name, http only, one address. */
function parseUrls(text) {
  const first = text.split(';').map((u) => u.trim()).filter(Boolean);
  if (first.length !== 1) throw new Error(`--urls must name exactly one address, e.g. http://127.0.0.1:5101 (it is ${JSON.stringify(text)}).`);
  let url;
  try {
    url = new URL(first[0]);
  } catch {
    throw new Error(`--urls is not a URL: ${JSON.stringify(first[0])}.`);
  }
  if (url.protocol !== 'http:') throw new Error(`--urls must be an http:// address (it is ${url.protocol}//).`);
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
  return { host, port: url.port === '' ? 80 : Number(url.port), href: `http://${url.host}` };
}

function loadConfig(argv = process.argv.slice(2), env = process.env) {
  const args = parseArguments(argv);
  const get = (key) => {
    const fromArgs = args.get(key.toLowerCase());
    if (fromArgs !== undefined) return fromArgs;
    const envName = key.replace(/:/g, '__');
    for (const [name, value] of Object.entries(env)) {
      if (name.toLowerCase() === envName.toLowerCase()) return value;
    }
    return undefined;
  };

  const environment = get('environment') ?? env.ASPNETCORE_ENVIRONMENT ?? env.NODE_ENV ?? 'Production';
  // Baton: sessions checkpointed by the gateway. Memory: express-session's own MemoryStore, plain sticky sessions
  // lost with the process, for comparisons (the .NET demo's Memory).
  const store = (get('Demo:SessionStore') ?? 'Baton').toLowerCase();
  if (store !== 'baton' && store !== 'memory') {
    throw new Error(`Demo:SessionStore must be Baton or Memory in the Node demo (it is ${JSON.stringify(store)}).`);
  }
  const instance = get('Demo:InstanceId') ?? 'demo';
  if (instance.trim() === '') throw new Error('Demo:InstanceId must not be empty.');

  const options = {
    secret: get('Baton:Secret') ?? env.BATON_SECRET,
    environment: environment.toLowerCase(),
  };
  for (const setting of BACKEND_SETTINGS) {
    const value = get(`Baton:Backend:${setting}`);
    if (value !== undefined) options[setting[0].toLowerCase() + setting.slice(1)] = value;
  }

  return {
    listen: parseUrls(get('urls') ?? get('ASPNETCORE_URLS') ?? 'http://127.0.0.1:5000'),
    instance,
    sessionStore: store,
    maxBlobBytes: parseWhole('Demo:MaxBlobBytes', get('Demo:MaxBlobBytes') ?? String(8 * 1024 * 1024), 0, 256 * 1024 * 1024),
    maxCartItems: parseWhole('Demo:MaxCartItems', get('Demo:MaxCartItems') ?? '100', 1, 1_000_000),
    baton: options,
    quiet: (get('Logging:LogLevel:Default') ?? '').toLowerCase() === 'none',
  };
}

module.exports = { loadConfig, parseArguments, parseUrls, baton };
