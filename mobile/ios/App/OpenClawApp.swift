// The iOS app: a pairing screen (gateway address + the 6-digit code the gateway shows) and the
// node's event lines. The node runs while the app is active, and in the background while iOS
// keeps it (background modes in Info.plist: location updates, fetch, processing).
import OpenClawShell
import SwiftUI

@main
struct OpenClawApp: App {
    @Environment(\.scenePhase) private var phase
    @StateObject private var node = try! NodeController(name: UIDevice.current.name)

    var body: some Scene {
        WindowGroup { PairingView(node: node) }
            .onChange(of: phase) { _, now in
                if now == .active { node.start() }
            }
    }
}

struct PairingView: View {
    @ObservedObject var node: NodeController
    @State private var gateway = ""
    @State private var code = ""
    @State private var message = ""

    var body: some View {
        Form {
            Section("Pair with a gateway") {
                TextField("host:port", text: $gateway).textInputAutocapitalization(.never)
                TextField("6-digit code", text: $code).keyboardType(.numberPad)
                Button("Pair") {
                    Task {
                        do {
                            let g = try await node.pair(gateway: gateway, code: code)
                            message = "Paired with \(g.name)"
                        } catch let e as NodeError {
                            message = e.localizedDescription
                        } catch {
                            message = "\(error)"
                        }
                    }
                }.disabled(code.count != 6 || gateway.isEmpty)
                if !message.isEmpty { Text(message) }
            }
            Section("Activity") {
                ForEach(Array(node.lines.suffix(50).enumerated()), id: \.offset) { Text($0.element).font(.caption) }
            }
        }
    }
}
