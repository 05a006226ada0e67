export { startRedis, type TestRedis } from './redis-server.js';
export { waitFor } from './wait.js';
