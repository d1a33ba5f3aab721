'use strict';

// The demo's session middleware: Baton's library (the default; every change checkpointed by the gateway), or
// express-session's own MemoryStore (Demo:SessionStore=Memory): plain sticky sessions, lost with the process,
// which is what an Express app behind a sticky proxy runs without Baton.

const session = require('express-session');
const baton = require('baton-session');

function createSessions(config) {
  if (config.sessionStore !== 'memory') return baton(config.baton);
  const secret = config.baton.secret;
  if (typeof secret !== 'string' || secret.length < 32) {
    throw new Error('Baton:Secret (at least 32 characters) also signs the MemoryStore session cookie.');
  }
  const middleware = session({ secret, name: 'demo.sid', resave: false, saveUninitialized: false, store: new session.MemoryStore() });
  middleware.close = () => {};
  return middleware;
}

module.exports = { createSessions };
