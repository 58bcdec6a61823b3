# The prefix-router image: the CLI bundle, the filter module and the Envoy API protos the
# picker's ext_proc service is loaded from at start. One image runs every subcommand; the
# control plane is the default. Build from the repository root:
#   docker build -t prefix-router .
# Run the control plane:
#   docker run -p 9090:9090 -e PREFIX_ROUTER_API_TOKEN=... prefix-router \
#     control-plane --host 0.0.0.0 --replicas http://10.0.0.1:8000,http://10.0.0.2:8000
# Run the endpoint picker:
#   docker run -p 9002:9002 -p 9003:9003 -p 9090:9090 prefix-router \
#     picker --host 0.0.0.0 --config '{"replicas":["10.0.0.1:8000"]}'
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The filter module and the TypeScript bundle.
RUN node cli/build.mjs

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
# esbuild bundles every dependency into dist/: no node_modules at run time but the protos below.
COPY --from=build /src/dist/ /app/dist/
COPY --from=build /src/plugin/prefix-router.wasm /app/plugin/prefix-router.wasm
# protobufjs reads ext_proc's .proto files at start from the packages that ship them.
COPY --from=build /src/node_modules/@grpc/grpc-js-xds/package.json /app/node_modules/@grpc/grpc-js-xds/package.json
COPY --from=build /src/node_modules/@grpc/grpc-js-xds/deps/ /app/node_modules/@grpc/grpc-js-xds/deps/
COPY --from=build /src/node_modules/protobufjs/package.json /app/node_modules/protobufjs/package.json
COPY --from=build /src/node_modules/protobufjs/google/ /app/node_modules/protobufjs/google/
# Numeric non-root user, so Kubernetes runAsNonRoot can verify it (manifests use 65532).
USER 65532:65532
EXPOSE 9002 9003 9090
# V8 flags for a server process: cli/serverNodeFlags.ts.
ENTRYPOINT ["node", "--no-memory-reducer", "--min-semi-space-size=16", "/app/dist/prefix-router.js"]
CMD ["control-plane", "--host", "0.0.0.0", "--port", "9090"]
