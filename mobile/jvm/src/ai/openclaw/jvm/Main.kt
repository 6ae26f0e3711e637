// The desktop JVM shell: runs the node core (through the generated Kotlin bindings and JNA)
// with the capabilities a JVM can offer, driven by one command per line on stdin, answering one
// line per command on stdout. People use it to try a gateway from a laptop; the Rust test
// (tests/tests/mobile_ffi.rs) drives it the same way. It shares NodeHost with the Android service.
package ai.openclaw.jvm

import ai.openclaw.node.CameraDevice
import ai.openclaw.node.CameraProvider
import ai.openclaw.node.DeviceInfo
import ai.openclaw.node.DeviceInfoProvider
import ai.openclaw.node.Location
import ai.openclaw.node.LocationProvider
import ai.openclaw.node.NodeEvent
import ai.openclaw.node.NodeException
import ai.openclaw.node.NotificationProvider
import ai.openclaw.node.Photo
import ai.openclaw.node.SecretStore
import ai.openclaw.node.ShellCapabilities
import ai.openclaw.node.ShellException
import ai.openclaw.shell.NodeHost
import ai.openclaw.shell.describe
import java.awt.Color
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.io.File
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermissions
import java.security.MessageDigest
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import javax.imageio.ImageIO

fun hex(bytes: ByteArray): String = bytes.joinToString("") { "%02x".format(it) }

fun sha256(bytes: ByteArray): String = hex(MessageDigest.getInstance("SHA-256").digest(bytes))

/** Switches a shell's test of its own error path: a handler that throws what it did not declare. */
class Faults {
    val camera = AtomicBoolean(false)
    val location = AtomicBoolean(false)
}

/**
 * A JVM has no camera API: this one draws a frame (a gradient that changes with each shot) and
 * encodes it with javax.imageio, so every photo is a real, distinct JPEG.
 */
class DrawnCamera(private val faults: Faults) : CameraProvider {
    private val shots = AtomicInteger(0)

    override fun list(): List<CameraDevice> = listOf(CameraDevice(0u, "drawn (javax.imageio)"))

    override fun snap(index: UInt?): Photo {
        if (index != null && index != 0u) throw ShellException.Unavailable("no camera $index")
        if (faults.camera.get()) throw IllegalStateException("camera driver crashed (injected)")
        val shot = shots.incrementAndGet()
        val (w, h) = 320 to 240
        val image = BufferedImage(w, h, BufferedImage.TYPE_INT_RGB)
        for (y in 0 until h) for (x in 0 until w) {
            image.setRGB(x, y, Color((x + shot * 7) % 256, (y * 255) / h, (shot * 40) % 256).rgb)
        }
        val out = ByteArrayOutputStream()
        check(ImageIO.write(image, "jpeg", out)) { "no JPEG writer in this JVM" }
        val jpeg = out.toByteArray()
        println("snap sha256=${sha256(jpeg)} bytes=${jpeg.size}")
        return Photo(jpeg, w.toUInt(), h.toUInt())
    }
}

/** A desktop has no GPS: the location it was told (--location LAT,LON). */
class FixedLocation(private val lat: Double, private val lon: Double, private val faults: Faults) :
    LocationProvider {
    override fun current(precise: Boolean): Location {
        if (faults.location.get()) throw ShellException.Denied("location permission revoked (injected)")
        return Location(lat, lon, if (precise) 5.0 else 500.0, null, System.currentTimeMillis())
    }
}

class JvmDeviceInfo : DeviceInfoProvider {
    override fun info() = DeviceInfo(
        System.getProperty("java.vm.name") ?: "jvm",
        System.getProperty("os.name") ?: "unknown",
        System.getProperty("os.version") ?: "unknown",
        null,
        null,
    )
}

class PrintedNotifications : NotificationProvider {
    override fun notify(title: String, body: String, urgency: String) =
        println("notification [$urgency] $title (${body.length} characters)")
}

/** Secrets as owner-only files in a directory: what a desktop without a keychain can do. */
class DirSecretStore(private val dir: File) : SecretStore {
    init {
        dir.mkdirs()
    }

    override fun get(key: String): ByteArray? = File(dir, key).takeIf { it.exists() }?.readBytes()

    override fun set(key: String, value: ByteArray) {
        val file = File(dir, key).toPath()
        Files.deleteIfExists(file)
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
        Files.write(file, value)
    }
}

/** What the node's process holds: threads (all, and the node's own), open fds, RSS. */
fun resources(): String {
    val tasks = File("/proc/self/task").listFiles().orEmpty()
    val nodeThreads = tasks.count { runCatching { File(it, "comm").readText().trim() }.getOrDefault("").startsWith("openclaw-node") }
    val fds = File("/proc/self/fd").list().orEmpty().size
    val rss = File("/proc/self/status").readLines().firstOrNull { it.startsWith("VmRSS:") }
        ?.split(Regex("\\s+"))?.getOrNull(1) ?: "0"
    return "resources threads=${tasks.size} node_threads=$nodeThreads fds=$fds rss_kb=$rss"
}

fun main(args: Array<String>) {
    val opts = args.toList().chunked(2).associate { it[0] to it.getOrElse(1) { "" } }
    val state = opts["--state"] ?: error("--state DIR is required")
    val (lat, lon) = (opts["--location"] ?: "0,0").split(",").map { it.toDouble() }
    val faults = Faults()
    val caps = ShellCapabilities(DrawnCamera(faults), FixedLocation(lat, lon, faults), PrintedNotifications(), null, JvmDeviceInfo())
    val secrets = opts["--secrets"]?.let { DirSecretStore(File(it)) }
    val backoff = (opts["--min-backoff-ms"] ?: "1000").toLong()
    // Each link that came up, for `cycle-linked`.
    val linked = LinkedBlockingQueue<String>()
    val host = try {
        NodeHost(state, opts["--name"] ?: "jvm", caps, secrets, backoff, 60_000) {
            println("event ${describe(it)}")
            if (it is NodeEvent.Connected) linked.offer(it.gateway)
        }
    } catch (e: NodeException) {
        println("error ${e::class.simpleName} ${e.message}")
        return
    }
    println("ready ${host.deviceId}")
    host.use {
        while (true) {
            val line = readlnOrNull() ?: break
            val words = line.trim().split(" ")
            try {
                when (words[0]) {
                    "pair" -> host.pair(words[1], words[2]).let { println("paired ${it.deviceId} ${it.name}") }
                    "start" -> { host.start(); println("started") }
                    "stop" -> { host.stop(); println("stopped") }
                    "status" -> host.status().let { s ->
                        println("status running=${s.running} network=${s.networkAvailable} caps=${s.capabilities.joinToString(",")} " +
                            s.gateways.joinToString(" ") { "${it.gateway.name}=${it.state}" })
                    }
                    "paired" -> println("paired-list " + host.paired().joinToString(" ") { "${it.deviceId}@${it.address}" })
                    "forget" -> println("forgot ${host.forget(words[1])}")
                    "network" -> { host.networkChanged(words[1] == "on"); println("network ${words[1]}") }
                    "fail" -> {
                        val flag = if (words[1] == "camera") faults.camera else faults.location
                        flag.set(words[2] == "on")
                        println("fail ${words[1]} ${words[2]}")
                    }
                    // Start and stop the node `n` times in a row (the phone's app coming and going).
                    "cycle" -> { repeat(words[1].toInt()) { host.start(); host.stop() }; println("cycled ${words[1]}") }
                    // The same, each time waiting until the gateway's link is up: every link's
                    // socket and TLS session must go with its runtime.
                    "cycle-linked" -> {
                        repeat(words[1].toInt()) { i ->
                            linked.clear()
                            host.start()
                            linked.poll(20, TimeUnit.SECONDS) ?: error("no link in cycle $i")
                            host.stop()
                        }
                        println("cycled ${words[1]}")
                    }
                    "resources" -> { System.gc(); println(resources()) }
                    "quit" -> break
                    else -> println("error Usage unknown command `${words[0]}`")
                }
            } catch (e: NodeException) {
                println("error ${e::class.simpleName} ${e.message}")
            }
            System.out.flush()
        }
    }
    println("bye")
}
