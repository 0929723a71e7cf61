// The status page's HTML, CSS and script (see status_page.h). Colours: one per party index, the
// palette scripts/plot.sh uses, so the page and the plots agree.
#include "hub/status_page.h"

namespace pcmoe::hub {

const std::string& status_page_html() {
  static const std::string kPage = R"html(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pcmoe hub</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:16px 24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
.sub{color:#666} .badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-weight:600}
.training{background:#2ca02c}.paused{background:#ff7f0e}.waiting{background:#7f7f7f}
.stopping{background:#9467bd}.finished{background:#1f77b4}.down{background:#d62728}
.bar{height:10px;background:#ddd;border-radius:5px;width:420px;display:inline-block;vertical-align:middle}
.bar>div{height:10px;background:#2ca02c;border-radius:5px}
table{border-collapse:collapse;background:#fff} td,th{padding:3px 9px;border-bottom:1px solid #e4e4e4;text-align:right}
th{background:#f0f0f0} td:first-child,th:first-child{text-align:left}
.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}
.lost{color:#d62728;font-weight:600} .flex{display:flex;flex-wrap:wrap;gap:18px}
svg{background:#fff;border:1px solid #e4e4e4} .err{color:#d62728}
</style></head><body>
<h1>pcmoe hub <span id="state" class="badge waiting">-</span></h1>
<div class="sub" id="head">loading status.json ...</div>
<div style="margin-top:6px"><span class="bar"><div id="progress" style="width:0"></div></span> <span id="steps"></span></div>
<h2>Parties</h2>
<table id="parties"><thead><tr><th>party</th><th>alive</th><th>state</th><th>steps</th><th>loss</th>
<th>held-out</th><th>tok/s</th><th>step ms (mean / last)</th><th>peak / budget MiB</th>
<th>sent / recv MiB</th><th>seen</th><th>joins</th></tr></thead><tbody></tbody></table>
<h2>Loss per party: training (thin, its last 200 steps) and held-out (bold)</h2><svg id="loss" width="760" height="220"></svg>
<h2>Global expert load (window), by host party; dashed: uniform</h2><div class="flex" id="load"></div>
<p class="sub">Read-only. JSON: <a href="status.json">status.json</a> &middot; Prometheus: <a href="metrics">metrics</a>
&middot; <span id="updated"></span></p>
<script>
"use strict";
const colours=["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
const colour=i=>colours[i%colours.length];
const NS="http://www.w3.org/2000/svg";
function el(tag,attrs,text){const e=document.createElementNS(NS,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}
function num(v,d){return (v===null||v===undefined||v<0)?"-":Number(v).toFixed(d);}
function mib(b){return b>0?(b/1048576).toFixed(1):"-";}
function cell(tr,text,cls){const td=document.createElement("td");td.textContent=text;if(cls)td.className=cls;tr.appendChild(td);return td;}
function drawParties(s){
  const tb=document.querySelector("#parties tbody");tb.textContent="";
  s.parties.forEach((p,i)=>{
    const tr=document.createElement("tr");
    const name=cell(tr,p.id);const dot=document.createElement("span");dot.className="dot";dot.style.background=colour(i);name.prepend(dot);
    cell(tr,p.alive?"yes":"no",p.alive?"":"lost");cell(tr,p.alive?p.state:(p.state==="absent"?"absent":"lost"),p.alive?"":"lost");
    cell(tr,p.steps_done);cell(tr,num(p.last_loss,4));cell(tr,num(p.last_eval_loss,4));cell(tr,num(p.tokens_per_s,0));
    cell(tr,num(p.step_ms_mean,1)+" / "+num(p.step_ms_last,1));
    cell(tr,mib(p.peak_memory_bytes)+" / "+mib(p.memory_budget_bytes));
    cell(tr,mib(p.bytes_sent)+" / "+mib(p.bytes_received));
    cell(tr,p.last_seen_ms_ago<0?"never":(p.last_seen_ms_ago/1000).toFixed(1)+" s");cell(tr,p.joins);
    tb.appendChild(tr);
  });
}
function drawLoss(s){
  const svg=document.getElementById("loss");svg.textContent="";
  const series=s.parties.map(p=>({train:p.recent_loss||[],evals:p.recent_eval_loss||[]}));
  let pts=[];series.forEach(x=>{pts=pts.concat(x.train,x.evals);});
  if(!pts.length){svg.appendChild(el("text",{x:20,y:30},"no step reported yet"));return;}
  const W=760,H=220,L=50,B=30,x0=Math.min(...pts.map(p=>p[0])),x1=Math.max(...pts.map(p=>p[0]),x0+1);
  const y0=Math.min(...pts.map(p=>p[1])),y1=Math.max(...pts.map(p=>p[1]),y0+1e-3);
  const X=x=>L+(x-x0)/(x1-x0)*(W-L-10),Y=y=>10+(y1-y)/(y1-y0)*(H-B-10);
  svg.appendChild(el("line",{x1:L,y1:H-B,x2:W-10,y2:H-B,stroke:"#999"}));svg.appendChild(el("line",{x1:L,y1:10,x2:L,y2:H-B,stroke:"#999"}));
  svg.appendChild(el("text",{x:W/2,y:H-6,"text-anchor":"middle","font-size":12},"global step"));
  svg.appendChild(el("text",{x:4,y:14,"font-size":11},y1.toFixed(2)));svg.appendChild(el("text",{x:4,y:H-B,"font-size":11},y0.toFixed(2)));
  svg.appendChild(el("text",{x:L,y:H-B+14,"font-size":11},x0));svg.appendChild(el("text",{x:W-10,y:H-B+14,"font-size":11,"text-anchor":"end"},x1));
  const line=(p,c,w)=>el("polyline",{points:p.map(q=>X(q[0])+","+Y(q[1])).join(" "),fill:"none",stroke:c,"stroke-width":w});
  series.forEach((x,i)=>{if(x.train.length)svg.appendChild(line(x.train,colour(i),1));
    if(x.evals.length){svg.appendChild(line(x.evals,colour(i),3));
      x.evals.forEach(q=>svg.appendChild(el("circle",{cx:X(q[0]),cy:Y(q[1]),r:3.5,fill:colour(i)})));}});
}
function drawLoad(s){
  const box=document.getElementById("load");box.textContent="";
  const load=s.load_window&&s.load_window.length?s.load_window:s.load_running;
  (load||[]).forEach((row,l)=>{
    const W=Math.max(220,row.length*22+60),H=150,L=36,B=28,m=Math.max(...row,1.5/row.length);
    const svg=el("svg",{width:W,height:H});
    svg.appendChild(el("text",{x:L,y:12,"font-size":12},"MoE layer "+s.moe_layers[l]));
    const bw=(W-L-10)/row.length,Y=v=>H-B-(v/m)*(H-B-20);
    row.forEach((v,e)=>{const host=s.placement[l][e];
      const r=el("rect",{x:L+e*bw+1,y:Y(v),width:Math.max(1,bw-2),height:H-B-Y(v),fill:colour(host)});
      r.appendChild(el("title",{},"expert "+e+" on "+(s.parties[host]?s.parties[host].id:host)+": "+(100*v).toFixed(1)+"%"));svg.appendChild(r);
      if(row.length<=32)svg.appendChild(el("text",{x:L+e*bw+bw/2,y:H-B+12,"font-size":9,"text-anchor":"middle"},e));});
    svg.appendChild(el("line",{x1:L,x2:W-10,y1:Y(1/row.length),y2:Y(1/row.length),stroke:"#222","stroke-dasharray":"4 3"}));
    svg.appendChild(el("text",{x:2,y:Y(1/row.length)+4,"font-size":10},(100/row.length).toFixed(1)+"%"));
    svg.appendChild(el("text",{x:W/2,y:H-3,"font-size":11,"text-anchor":"middle"},"expert (share of routed tokens)"));
    box.appendChild(svg);
  });
}
function draw(s){
  const st=document.getElementById("state");st.textContent=s.state;st.className="badge "+s.state;
  document.getElementById("head").textContent="run "+s.run_id+" \u00b7 turn: "+(s.turn_party||"-")+" \u00b7 pool: "+
    (s.pool_step<0?"none":"step "+s.pool_step)+" \u00b7 up "+Math.round(s.uptime_s)+" s \u00b7 model "+s.model_hash.slice(0,12);
  document.getElementById("progress").style.width=(s.total_steps>0?100*s.step/s.total_steps:0)+"%";
  document.getElementById("steps").textContent="step "+s.step+" / "+s.total_steps;
  drawParties(s);drawLoss(s);drawLoad(s);
  const u=document.getElementById("updated");u.textContent="hub state at "+s.published_at;u.className="";
}
async function tick(){
  try{const r=await fetch("status.json",{cache:"no-store"});if(!r.ok)throw new Error("HTTP "+r.status);draw(await r.json());}
  catch(e){const u=document.getElementById("updated");u.textContent="hub not answering: "+e.message;u.className="err";
    const st=document.getElementById("state");st.textContent="unreachable";st.className="badge down";}
  setTimeout(tick,2000);
}
tick();
</script></body></html>
)html";
  return kPage;
}

}  // namespace pcmoe::hub
