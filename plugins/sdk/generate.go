package sdk

// The gRPC code in pb/ is generated from proto/edgepipe.proto and committed,
// so building edgepipe never needs protoc. To regenerate after changing the
// .proto:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	go generate ./plugins/sdk/
//
//go:generate protoc --proto_path=proto --go_out=pb --go_opt=paths=source_relative --go-grpc_out=pb --go-grpc_opt=paths=source_relative edgepipe.proto
