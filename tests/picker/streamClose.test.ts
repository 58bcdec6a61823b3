// The embedded gateway as an ext_proc client ends each served request's stream with a half-close,
// as Envoy's filter does, never a reset: HTTP/2 servers (nghttp2, so Node's and the picker's)
// close a whole connection, every open stream on it, past a burst of about 1000 resets. Seen on
// the wire: a stand-in picker on node:http2 records each stream's RST_STREAM code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { decodeRequest, encodeResponse, PROCESS_METHOD, type ProcessingResponse } from '../../host/endpointPicker/protocol.js';
import { startPickerGateway } from '../../host/endpointPicker/pickerGateway.js';

function grpcFrame(b: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(b.length, 1);
  return Buffer.concat([head, b]);
}

test('a served request\'s ext_proc stream ends with the client\'s half-close and the server\'s status, no RST_STREAM', async () => {
  const upstream = http.createServer((req, res) => { req.resume(); res.end('ok'); });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const endpoint = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const rstCodes: number[] = [];
  const picker = http2.createServer();
  picker.on('stream', (stream, headers) => {
    assert.equal(headers[':path'], PROCESS_METHOD);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    let pending = Buffer.alloc(0);
    const answer = (m: ProcessingResponse) => stream.write(grpcFrame(encodeResponse(m)));
    stream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const m = decodeRequest(pending.subarray(5, 5 + pending.readUInt32BE(1)));
        pending = pending.subarray(5 + pending.readUInt32BE(1));
        // A GET: the request headers get the decision; the response passes through unchanged.
        if (m.request_headers) answer({ request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-gateway-destination-endpoint', raw_value: Buffer.from(endpoint) } }] } } } });
        if (m.response_headers) answer({ response_headers: { response: {} } });
        if (m.response_body) answer({ response_body: { response: { body_mutation: { streamed_response: { body: m.response_body.body, end_of_stream: m.response_body.end_of_stream } } } } });
      }
    });
    stream.on('end', () => stream.end());
    stream.on('close', () => rstCodes.push(stream.rstCode ?? -1));
  });
  await new Promise<void>((r) => picker.listen(0, '127.0.0.1', r));
  const gw = await startPickerGateway({ picker: `127.0.0.1:${(picker.address() as AddressInfo).port}` });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${gw.url}/health`);
      assert.equal(await r.text(), 'ok');
    }
    const deadline = Date.now() + 3000;
    while (rstCodes.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(rstCodes, [0, 0, 0, 0, 0], 'NO_ERROR on every stream (8 would be a CANCEL reset)');
  } finally {
    await gw.close();
    picker.close();
    upstream.close();
  }
});
