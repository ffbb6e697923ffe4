#!/usr/bin/env python3
"""Import cycles among the top-level modules of src/: reads every `crate::X`
path outside `#[cfg(test)]` modules, builds the module graph and prints its
strongly connected components of more than one module (none is the goal).
With -v, also every module and what it imports.

    python3 scripts/import-cycles.py [-v]
"""

import collections
import os
import re
import sys

edges=collections.defaultdict(set)
def top(path):
    rel=path[len('src/'):]
    if '/' in rel: return rel.split('/')[0]
    return rel[:-3]
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f)
        if f=='tests.rs' or '/tests/' in p: continue
        s=open(p).read()
        m=re.search(r'#\[cfg\(test\)\]\s*(pub\(crate\) )?mod \w+ \{',s)
        if m: s=s[:m.start()]
        t=top(p)
        for n in re.findall(r'crate::([a-z_]+)',s):
            if n!=t: edges[t].add(n)
        if t in ('main',): pass
# cycle detection (Tarjan)
idx={};low={};st=[];on=set();res=[];i=[0]
def sc(v):
    idx[v]=low[v]=i[0];i[0]+=1;st.append(v);on.add(v)
    for w in edges.get(v,()):
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(comp)
for v in list(edges): 
    if v not in idx: sc(v)
print("cycles among top-level modules:",res if res else "none")
if '-v' in sys.argv:
    for k in sorted(edges): print(k,'->',sorted(edges[k]))
