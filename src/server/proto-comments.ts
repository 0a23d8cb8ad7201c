/**
 * Proto comments for operators: `grpcurl describe` prints the comments it finds in the
 * descriptors that server reflection sends (their SourceCodeInfo). @grpc/proto-loader builds
 * descriptors without it, so this module re-reads the protos with protobufjs (which keeps every
 * comment), attaches a SourceCodeInfo location with the leading comment of each service, method,
 * message, field, enum and enum value, and swaps the enriched descriptors into the package
 * definition that the reflection service reads.
 */
import { existsSync } from 'node:fs';
import type * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

interface Location {
  path: number[];
  span: number[];
  leadingComments: string;
}

/** Field numbers of descriptor.proto used in SourceCodeInfo paths. */
const FILE_MESSAGE_TYPE = 4;
const FILE_ENUM_TYPE = 5;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED_TYPE = 3;
const MESSAGE_ENUM_TYPE = 4;
const ENUM_VALUE = 2;
const SERVICE_METHOD = 2;

function location(path: number[], comment: string | null | undefined, into: Location[]): void {
  if (comment === null || comment === undefined || comment.trim() === '') return;
  const text = comment.split('\n').map((line) => ` ${line}`).join('\n');
  into.push({ path, span: [0, 0, 0], leadingComments: `${text}\n` });
}

function describeEnum(enumType: protobuf.Enum, path: number[], into: Location[]): void {
  location(path, enumType.comment, into);
  Object.keys(enumType.values).forEach((name, index) => {
    location([...path, ENUM_VALUE, index], enumType.comments[name], into);
  });
}

function describeMessage(type: protobuf.Type, path: number[], into: Location[]): void {
  location(path, type.comment, into);
  type.fieldsArray.forEach((field, index) => {
    location([...path, MESSAGE_FIELD, index], field.comment, into);
  });
  let nested = 0;
  let enums = 0;
  for (const child of type.nestedArray) {
    if (child instanceof protobuf.Type) describeMessage(child, [...path, MESSAGE_NESTED_TYPE, nested++], into);
    else if (child instanceof protobuf.Enum) describeEnum(child, [...path, MESSAGE_ENUM_TYPE, enums++], into);
  }
}

/**
 * Returns a copy of `definition` whose descriptors carry the protos' comments.
 * @param files the proto files (as loaded), @param includeDirs where they are
 */
export function withProtoComments(definition: protoLoader.PackageDefinition, files: readonly string[], includeDirs: readonly string[]): protoLoader.PackageDefinition {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of includeDirs) {
      const candidate = `${dir.replace(/\/$/, '')}/${target}`;
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync([...files], { keepCase: true, alternateCommentMode: true });
  root.resolveAll();

  const enriched = new Map<string, Buffer>();
  const fileSet = root.toDescriptor('proto3') as unknown as { file: { name: string; package: string; messageType?: { name: string }[]; enumType?: { name: string }[]; service?: { name: string }[] }[] };
  for (const file of fileSet.file) {
    const locations: Location[] = [];
    const lookup = (name: string): protobuf.ReflectionObject | null => root.lookup(`${file.package}.${name}`);
    (file.messageType ?? []).forEach((message, index) => {
      const type = lookup(message.name);
      if (type instanceof protobuf.Type) describeMessage(type, [FILE_MESSAGE_TYPE, index], locations);
    });
    (file.enumType ?? []).forEach((enumDescriptor, index) => {
      const enumType = lookup(enumDescriptor.name);
      if (enumType instanceof protobuf.Enum) describeEnum(enumType, [FILE_ENUM_TYPE, index], locations);
    });
    (file.service ?? []).forEach((serviceDescriptor, index) => {
      const service = lookup(serviceDescriptor.name);
      if (!(service instanceof protobuf.Service)) return;
      location([FILE_SERVICE, index], service.comment, locations);
      service.methodsArray.forEach((method, methodIndex) => {
        location([FILE_SERVICE, index, SERVICE_METHOD, methodIndex], method.comment, locations);
      });
    });
    const withInfo = { ...file, sourceCodeInfo: { location: locations } };
    enriched.set(file.name, Buffer.from(descriptor.FileDescriptorProto.encode(descriptor.FileDescriptorProto.fromObject(withInfo)).finish()));
  }

  // The reflection service indexes the descriptors carried by message and enum entries.
  const copy: protoLoader.PackageDefinition = {};
  for (const [name, entry] of Object.entries(definition)) {
    if ('fileDescriptorProtos' in entry && Array.isArray(entry.fileDescriptorProtos)) {
      const fileDescriptorProtos = entry.fileDescriptorProtos.map((buffer) => {
        const file = descriptor.FileDescriptorProto.decode(buffer) as unknown as { name: string };
        return enriched.get(file.name) ?? buffer;
      });
      copy[name] = { ...entry, fileDescriptorProtos } as protoLoader.AnyDefinition;
    } else {
      copy[name] = entry;
    }
  }
  return copy;
}
