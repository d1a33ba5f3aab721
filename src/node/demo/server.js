'use strict';

// The Baton demo backend on Express:
//   node server.js --urls http://127.0.0.1:5101 --Demo:InstanceId=b1 --Baton:Secret=<the gateway's secret>
// (--Demo:SessionStore=Memory: express-session's MemoryStore instead of Baton's library, for comparisons).
// Listens only on the address --urls names; SIGTERM (or SIGINT) stops it cleanly.

const http = require('node:http');
const { loadConfig } = require('./config');
const { createSessions } = require('./sessions');
const { createApp } = require('./app');

function main() {
  let config;
  let middleware;
  try {
    config = loadConfig();
    middleware = createSessions(config);
  } catch (error) {
    console.error(error.message);
    process.exit(2);
  }

  const server = http.createServer(createApp(config, middleware));
  server.keepAliveTimeout = 30_000;
  server.on('error', (error) => {
    console.error(`Could not listen on ${config.listen.href}: ${error.message}`);
    process.exit(1);
  });
  server.listen(config.listen.port, config.listen.host, () => {
    if (!config.quiet) console.log(`Demo backend ${config.instance} listening on: ${config.listen.href} (${middleware.incarnation ? `incarnation ${middleware.incarnation}` : 'MemoryStore sessions'})`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    if (!config.quiet) console.log(`${signal}: stopping ${config.instance}`);
    middleware.close();
    server.close(() => process.exit(0));
    // Keep-alive connections close as soon as their request is answered.
    server.closeIdleConnections();
    setInterval(() => server.closeIdleConnections(), 50).unref();
    // Requests still running get a few seconds to finish.
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
