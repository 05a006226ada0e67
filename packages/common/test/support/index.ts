export { lateBound, useRedis } from './hooks.js';
export { startRedis, type TestRedis } from './redis-server.js';
export { waitFor } from './wait.js';
