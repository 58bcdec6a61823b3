// gRPC health (grpc.health.v1.Health, Check and Watch) on the picker's health port, with the
// services the Endpoint Picker Protocol names: "" and "liveness" (the process answers),
// "readiness" and "envoy.service.ext_proc.v3.ExternalProcessor" (the filter's VMs are configured
// and the picker is not draining). Every replica is ready at once: pickers run active-active.
import protobuf from 'protobufjs';
import * as grpc from '@grpc/grpc-js';

export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;
export const EXT_PROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';

const checkRequest = new protobuf.Type('HealthCheckRequest').add(new protobuf.Field('service', 1, 'string'));
const checkResponse = new protobuf.Type('HealthCheckResponse').add(new protobuf.Field('status', 1, 'int32'));
new protobuf.Root().define('grpc.health.v1').add(checkRequest).add(checkResponse);

interface CheckRequest { service?: string }
interface CheckResponse { status: number }

const encodeReq = (m: CheckRequest) => Buffer.from(checkRequest.encode(checkRequest.fromObject(m)).finish());
const decodeReq = (b: Buffer) => checkRequest.toObject(checkRequest.decode(b), { defaults: true }) as CheckRequest;
const encodeRes = (m: CheckResponse) => Buffer.from(checkResponse.encode(checkResponse.fromObject(m)).finish());
const decodeRes = (b: Buffer) => checkResponse.toObject(checkResponse.decode(b), { defaults: true }) as CheckResponse;

export const HEALTH_SERVICE: grpc.ServiceDefinition = {
  Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: encodeReq, requestDeserialize: decodeReq, responseSerialize: encodeRes, responseDeserialize: decodeRes },
  Watch: { path: '/grpc.health.v1.Health/Watch', requestStream: false, responseStream: true, requestSerialize: encodeReq, requestDeserialize: decodeReq, responseSerialize: encodeRes, responseDeserialize: decodeRes },
};

export type HealthClient = grpc.Client & {
  Check(req: CheckRequest, cb: (e: grpc.ServiceError | null, r?: CheckResponse) => void): grpc.ClientUnaryCall;
  Watch(req: CheckRequest): grpc.ClientReadableStream<CheckResponse>;
};
export const HealthClientConstructor = grpc.makeGenericClientConstructor(HEALTH_SERVICE, 'Health') as unknown as new (address: string, credentials: grpc.ChannelCredentials) => HealthClient;

/** The serving state the health service reports, and its watchers. */
export class HealthState {
  private ready = false;
  private readonly watchers = new Set<{ service: string; send(status: number): void }>();

  status(service: string): number {
    if (service === '' || service === 'liveness') return ServingStatus.SERVING;
    if (service === 'readiness' || service === EXT_PROC_SERVICE_NAME) return this.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    return ServingStatus.SERVICE_UNKNOWN;
  }

  setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    for (const w of this.watchers) w.send(this.status(w.service));
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Check: (call: grpc.ServerUnaryCall<CheckRequest, CheckResponse>, cb: grpc.sendUnaryData<CheckResponse>) => {
        const status = this.status(call.request.service ?? '');
        if (status === ServingStatus.SERVICE_UNKNOWN) cb({ code: grpc.status.NOT_FOUND, details: `unknown service '${call.request.service}'` });
        else cb(null, { status });
      },
      Watch: (call: grpc.ServerWritableStream<CheckRequest, CheckResponse>) => {
        const service = call.request.service ?? '';
        let last = -1;
        const w = { service, send: (status: number) => { if (status !== last) { last = status; call.write({ status }); } } };
        this.watchers.add(w);
        w.send(this.status(service));
        call.on('cancelled', () => this.watchers.delete(w));
        call.on('close', () => this.watchers.delete(w));
      },
    };
  }

  /** Ends every Watch stream (at shutdown). */
  endWatches(): void {
    this.watchers.clear();
  }
}
