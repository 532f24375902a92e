#!/usr/bin/env bash
# Regenerates Sources/CSIProtocol, Sources/AdminProtocol and Sources/AgentProtocol from proto/*.proto.
# Run by hand after editing a .proto; CI never runs it (the generated Swift is committed).
#
# Needs protoc (Debian: protobuf-compiler) and the two plugins, built once in a throwaway
# package outside the repository:
#   swift-protobuf 1.39.0        → swift build -c release --product protoc-gen-swift
#   grpc-swift-protobuf 2.4.1    → swift build -c release --product protoc-gen-grpc-swift-2
# (one --product per call). Point PLUGINS at that package's .build/release directory.
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGINS=${PLUGINS:-/work/plugins/.build/release}
command -v protoc >/dev/null || apt-get install -y protobuf-compiler
for pair in csi:CSIProtocol admin:AdminProtocol agent:AgentProtocol; do
  proto=${pair%%:*}; target=${pair##*:}
  mkdir -p "Sources/$target"
  rm -f "Sources/$target"/*.pb.swift "Sources/$target"/*.grpc.swift
  protoc -I proto -I /usr/include \
    --plugin=protoc-gen-swift="$PLUGINS/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift-2="$PLUGINS/protoc-gen-grpc-swift-2" \
    --swift_out="Sources/$target" --swift_opt=Visibility=Public \
    --grpc-swift-2_out="Sources/$target" --grpc-swift-2_opt=Visibility=Public \
    "proto/$proto.proto"
done
echo "generated: $(ls Sources/CSIProtocol Sources/AdminProtocol Sources/AgentProtocol | tr '\n' ' ')"
