// The peer a user could write by hand: node:http answering GET /health, nothing else.
import { createServer } from 'node:http';

const body = JSON.stringify({ status: 'ok' });
createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(body);
    return;
  }
  res.writeHead(404);
  res.end();
}).listen(Number(process.env.PORT), process.env.HOST);
