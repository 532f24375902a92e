/// The storage classes Berth ships (`storageclasses/*.yaml`), compiled in so that a
/// daemon started with an empty state directory can load them without the repository.
/// A test checks that these texts equal the files, so the two cannot drift.
public enum ShippedClasses {
    public static let manifests: [(file: String, yaml: String)] = [
        ("ec-4-2.yaml", """
# Reed-Solomon 4+2 on six distinct hosts: survives two host failures. Overhead 1.5x.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ec-4-2
provisioner: csi.berth.dev
parameters:
  redundancy: "erasure"
  dataShards: "4"
  parityShards: "2"
  failureDomain: "host"
  chunkSize: "4Mi"
  pgCount: "256"
reclaimPolicy: Delete
allowVolumeExpansion: true
volumeBindingMode: Immediate
"""),
        ("remote-disk.yaml", """
# One copy, for applications that replicate their own data (Kafka, Elasticsearch, …):
# no 3 x 3 = 9 copies. Survives nothing on its own. Overhead 1.0x.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: remote-disk
provisioner: csi.berth.dev
parameters:
  redundancy: "single"
  failureDomain: "host"
  chunkSize: "4Mi"
  pgCount: "256"
reclaimPolicy: Delete
allowVolumeExpansion: true
volumeBindingMode: Immediate
"""),
        ("replicated-3.yaml", """
# Three full copies on three distinct hosts: survives two host failures. Overhead 3.0x.
# Works with `kubectl apply -f` and with `provisionctl class apply`.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: replicated-3
provisioner: csi.berth.dev
parameters:
  redundancy: "replicated"
  copies: "3"
  failureDomain: "host"
  chunkSize: "4Mi"
  pgCount: "256"
reclaimPolicy: Delete
allowVolumeExpansion: true
volumeBindingMode: Immediate
"""),
    ]

    /// The parsed classes, in file order.
    public static func classes() throws(StorageClassError) -> [StorageClass] {
        var all: [StorageClass] = []
        for (file, yaml) in manifests { all += try StorageClassManifest.parse(yaml: yaml, source: file) }
        return all
    }
}
