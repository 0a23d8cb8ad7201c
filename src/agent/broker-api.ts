/**
 * The broker's API as grpc-js sees it: the proto files and the one way both sides load them
 * (the server imports this too, so client and server read the protos identically).
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The proto files of the API, relative to proto/. */
export const PROTO_FILES: readonly string[] = Object.freeze([
  'credbroker/v1/enrollment.proto',
  'credbroker/v1/certificates.proto',
  'credbroker/v1/administration.proto',
  'credbroker/v1/tokens.proto',
  'credbroker/v1/rotation.proto',
]);

/** proto/ of this package (also from a build in dist/). */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url).href.replace('/dist/proto/', '/proto/'));

/** How the protos are read: camelCase fields, int64 as numbers, enums as names, bytes as Buffers. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
});

/** Loads the API's protos plus `extraFiles` (absolute paths, e.g. the health proto). */
export function loadBrokerApi(extraFiles: readonly string[] = []): { definition: protoLoader.PackageDefinition; grpcObject: grpc.GrpcObject } {
  const definition = protoLoader.loadSync([...PROTO_FILES, ...extraFiles], PROTO_LOADER_OPTIONS);
  return { definition, grpcObject: grpc.loadPackageDefinition(definition) };
}
