// The pairing screen: the gateway's address and the 6-digit code it shows
// (`openclaw nodes pair --listen`); pairing runs off the UI thread and shows the typed error.
package ai.openclaw.android

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import ai.openclaw.node.NodeException

class PairingActivity : Activity() {
    override fun onCreate(saved: Bundle?) {
        super.onCreate(saved)
        startForegroundService(Intent(this, NodeService::class.java))
        val gateway = EditText(this).apply { hint = "gateway host:port" }
        val code = EditText(this).apply { hint = "6-digit code"; inputType = InputType.TYPE_CLASS_NUMBER }
        val result = TextView(this)
        val pair = Button(this).apply { text = "Pair" }
        pair.setOnClickListener {
            val host = NodeService.host ?: return@setOnClickListener result.setText("the node is starting; try again")
            Thread {
                val said = try {
                    "Paired with ${host.pair(gateway.text.toString().trim(), code.text.toString().trim()).name}"
                } catch (e: NodeException.WrongCode) {
                    "Wrong code: check the code the gateway shows"
                } catch (e: NodeException) {
                    e.message ?: e.toString()
                }
                runOnUiThread { result.text = said }
            }.start()
        }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            listOf(gateway, code, pair, result).forEach { addView(it) }
        })
    }
}
